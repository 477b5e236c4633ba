"""schemathesis hooks: make requests as an enrolled tablet.

Loaded by scripts/api-fuzz (SCHEMATHESIS_HOOKS). On load it makes an Ed25519 key,
enrols it with the demo's one-time code (VRS_FUZZ_ENROLMENT) at VRS_FUZZ_BASE, signs
the tablet's user in with the passcode the server mails into its mail folder
(VRS_FUZZ_MAIL), and from then on signs every request to /api/tablet/ the way
vrs_domain::wire::signing says, over the exact bytes requests sends, with the
user's session. Generated dose records are given the
enrolled device's id, so that the fuzzing reaches past the device check.
"""

import glob
import hashlib
import os
import secrets
import time

import requests
import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

BASE = os.environ["VRS_FUZZ_BASE"].rstrip("/")
_KEY = Ed25519PrivateKey.generate()
_PUBLIC = _KEY.public_key().public_bytes(
    serialization.Encoding.Raw, serialization.PublicFormat.Raw
).hex()
_answer = requests.post(
    BASE + "/api/tablet/enrol",
    json={"code": os.environ["VRS_FUZZ_ENROLMENT"], "public_key": _PUBLIC},
    timeout=30,
)
_answer.raise_for_status()
DEVICE = _answer.json()["device_id"]


class Sign(requests.auth.AuthBase):
    def __call__(self, r):
        if not r.path_url.startswith("/api/tablet/") or r.path_url.startswith("/api/tablet/enrol"):
            return r
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        now = str(int(time.time()))
        nonce = secrets.token_hex(16)
        message = "\n".join(
            ["vrs-sig-v1", r.method, r.path_url, now, nonce, hashlib.sha256(body).hexdigest()]
        )
        r.headers["x-vrs-device"] = DEVICE
        r.headers["x-vrs-time"] = now
        r.headers["x-vrs-nonce"] = nonce
        r.headers["x-vrs-signature"] = _KEY.sign(message.encode("utf-8")).hex()
        if SESSION:
            r.headers["x-vrs-session"] = SESSION
        return r


def _mailed_passcode(mail_dir):
    deadline = time.time() + 20
    while time.time() < deadline:
        for path in sorted(glob.glob(os.path.join(mail_dir, "*.eml")), reverse=True):
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    line = line.strip()
                    if len(line) == 6 and line.isdigit():
                        return line
        time.sleep(0.1)
    raise RuntimeError("no passcode mail in " + mail_dir)


SESSION = None
requests.post(BASE + "/api/tablet/signin/start", json={}, auth=Sign(), timeout=30).raise_for_status()
_verified = requests.post(
    BASE + "/api/tablet/signin/verify",
    json={"passcode": _mailed_passcode(os.environ["VRS_FUZZ_MAIL"])},
    auth=Sign(),
    timeout=30,
)
_verified.raise_for_status()
SESSION = _verified.json()["session"]


@schemathesis.hook
def map_body(ctx, body):
    if isinstance(body, dict) and isinstance(body.get("records"), list):
        for record in body["records"]:
            if isinstance(record, dict) and "device_id" in record:
                record["device_id"] = DEVICE
    return body


@schemathesis.hook
def before_call(ctx, case, kwargs):
    kwargs["auth"] = Sign()
