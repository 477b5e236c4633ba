// The staff pages' behaviour: each page's shell is filled through the JSON API with
// the session cookie; changes carry the session's CSRF token. No framework.
"use strict";

const T = JSON.parse(document.getElementById("texts").textContent);
const page = document.body.dataset.page;
let csrf = sessionStorage.getItem("vrs_csrf") || "";

function say(text, bad) {
  const m = document.getElementById("message");
  m.textContent = text || "";
  m.className = bad ? "bad" : "good";
}

async function api(method, path, body, type) {
  const headers = {};
  if (method !== "GET") headers["x-csrf-token"] = csrf;
  let data = body;
  if (body !== undefined && !(body instanceof Blob) && !(body instanceof File)) {
    headers["content-type"] = "application/json";
    data = JSON.stringify(body);
  } else if (type) {
    headers["content-type"] = type;
  }
  const r = await fetch(path, { method, headers, body: data, credentials: "same-origin" });
  if (r.status === 401 && page !== "signin") {
    location.href = "/signin";
    throw new Error("signed out");
  }
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (!r.ok) {
    const msg = (json && json.error) || text || String(r.status);
    say(msg, true);
    throw new Error(msg);
  }
  return json;
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  row.appendChild(td);
  return td;
}

function button(label, action) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", action);
  return b;
}

function fill(table, items, columns, actions) {
  const body = table.querySelector("tbody");
  body.replaceChildren();
  for (const item of items) {
    const tr = document.createElement("tr");
    for (const c of columns) cell(tr, typeof c === "function" ? c(item) : item[c]);
    if (actions) {
      const td = document.createElement("td");
      for (const a of actions(item)) td.appendChild(a);
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}

function form(id) {
  return document.getElementById(id);
}

function values(f) {
  const out = {};
  for (const el of f.elements) {
    if (!el.name) continue;
    if (el.type === "checkbox") out[el.name] = el.checked;
    else if (el.type === "radio") { if (el.checked) out[el.name] = el.value; }
    else if (el.type !== "file") out[el.name] = el.value.trim();
  }
  return out;
}

function onSubmit(id, handler) {
  const f = form(id);
  if (!f) return;
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    try { await handler(f); } catch (err) { if (!document.getElementById("message").textContent) say(String(err), true); }
  });
}

async function me() {
  const who = await api("GET", "/api/me");
  if (who.csrf) { csrf = who.csrf; sessionStorage.setItem("vrs_csrf", csrf); }
  return who;
}

const pages = {
  async signin() {
    let email = "";
    onSubmit("start", async (f) => {
      email = values(f).email;
      await api("POST", "/api/signin/start", { email });
      document.getElementById("sent").hidden = false;
      form("verify").hidden = false;
      form("verify").elements.passcode.focus();
    });
    onSubmit("verify", async (f) => {
      const who = await api("POST", "/api/signin/verify", { email, passcode: values(f).passcode });
      csrf = who.csrf;
      sessionStorage.setItem("vrs_csrf", csrf);
      location.href = "/";
    });
  },

  async home() {
    const who = await me();
    document.getElementById("who").textContent = `${who.email} (${T.municipality} ${who.municipality})`;
  },

  async upload() {
    await me();
    onSubmit("upload", (f) => new Promise((resolve, reject) => {
      const v = values(f);
      const file = f.elements.file.files[0];
      const path = v.kind === "paper" ? "/api/paper/import" : "/api/register/import";
      // The upload's own id, to ask the server how far it has got.
      const id = globalThis.crypto && crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
      const q = new URLSearchParams({ mode: v.partial ? "partial" : "strict", dry_run: v.dry_run ? "true" : "false", progress: id });
      const bar = document.getElementById("progress");
      const stage = document.getElementById("stage");
      bar.hidden = false;
      bar.value = 0;
      stage.textContent = T.stage_sending;
      // Once the file is sent: its rows checked (the share of the file read), then stored.
      let polling = null;
      const poll = async () => {
        const r = await fetch(`/api/imports/progress/${id}`, { credentials: "same-origin" });
        if (!r.ok || polling === null) return;
        const p = await r.json();
        if (p.stage === "checking" && p.total > 0) {
          const pct = Math.floor((100 * p.checked) / p.total);
          bar.value = pct;
          stage.textContent = `${T.stage_checking} ${pct}%`;
        } else if (p.stage === "storing") {
          bar.removeAttribute("value");
          stage.textContent = T.stage_storing;
        }
      };
      const x = new XMLHttpRequest();
      x.open("POST", `${path}?${q}`);
      x.setRequestHeader("content-type", "text/csv");
      x.setRequestHeader("x-csrf-token", csrf);
      x.upload.addEventListener("progress", (e) => { if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total); });
      x.upload.addEventListener("load", () => {
        bar.value = 0;
        stage.textContent = T.stage_checking;
        polling = setInterval(() => { poll().catch(() => {}); }, 500);
      });
      const stopPolling = () => { clearInterval(polling); polling = null; stage.textContent = ""; };
      x.addEventListener("load", () => {
        stopPolling();
        bar.value = 100;
        let r = null;
        try { r = JSON.parse(x.responseText); } catch (_) { r = null; }
        if (x.status === 401) { location.href = "/signin"; return resolve(); }
        if (x.status >= 400 && !(r && r.import_id !== undefined)) { say((r && r.error) || x.statusText, true); return reject(new Error("upload")); }
        const report = document.getElementById("report");
        report.hidden = false;
        const counts = document.getElementById("counts");
        counts.replaceChildren();
        for (const k of ["rows", "new", "updated", "unchanged", "flagged", "rejected"]) cell(counts, r[k]);
        // A file not applied changed nothing: its counts are what would have happened.
        for (const th of document.querySelectorAll("#count-heads th[data-k]")) {
          th.textContent = r.outcome === "applied" ? T[th.dataset.k] : T[`would_${th.dataset.k}`];
        }
        const lines = [];
        for (const e of r.errors || []) for (const p of e.problems) lines.push({ line: e.line, field: p.field, message: p.message, fix: p.fix });
        fill(document.getElementById("errors"), lines, ["line", "field", "message", "fix"]);
        const link = document.getElementById("error-csv");
        link.hidden = lines.length === 0;
        link.href = `/api/imports/${r.import_id}/errors.csv`;
        // The server's own words for what the file did (or would have done).
        say(document.documentElement.lang === "en" ? r.summary.en : r.summary.ja, r.outcome === "rejected");
        resolve();
      });
      x.addEventListener("error", () => { stopPolling(); say("network", true); reject(new Error("network")); });
      x.send(file);
    }));
  },

  async review() {
    await me();
    const load = async () => {
      const held = await api("GET", "/api/records/held");
      document.getElementById("empty").hidden = held.length > 0;
      const why = (h) => `${T["hold_" + h.reason] || h.reason} (${h.detail})`;
      fill(document.getElementById("held"), held, ["voucher", "dose_number", "vaccinated_on", "vaccine", "lot", why], (h) => [
        button(T.void, async () => {
          if (!confirm(T.confirm_void)) return;
          await api("POST", `/api/records/${h.client_record_id}/void`, { reason: "web" });
          say(T.saved);
          await load();
        }),
        button(T.amend, async () => {
          const voucher = prompt(T.voucher, h.voucher);
          if (voucher === null) return;
          const date = prompt(T.date, h.vaccinated_on);
          if (date === null) return;
          const lot = prompt(T.lot, h.lot);
          if (lot === null) return;
          const reason = prompt(T.reason_prompt, "");
          if (!reason) return;
          const change = { reason };
          if (voucher.trim() !== h.voucher) change.voucher = voucher.trim();
          if (date.trim() !== h.vaccinated_on) change.vaccinated_on = date.trim().replaceAll("/", "-");
          if (lot.trim() !== h.lot) change.lot = lot.trim().toUpperCase();
          const out = await api("POST", `/api/records/${h.client_record_id}/amend`, change);
          say(`${T.saved}: ${out.outcome === "held" ? T["hold_" + out.reason] : T.accepted}`);
          await load();
        }),
        button(T.release, async () => {
          const reason = prompt(T.reason_prompt, "");
          if (!reason) return;
          await api("POST", `/api/records/${h.client_record_id}/release`, { reason });
          say(T.saved);
          await load();
        }),
      ]);
    };
    await load();
  },

  async export() {
    await me();
    const f = form("export");
    const today = new Date().toISOString().slice(0, 10);
    f.elements.to.value = today;
    f.elements.from.value = `${today.slice(0, 4)}-01-01`;
    onSubmit("export", async (f) => {
      const v = values(f);
      location.href = `/api/ledger.csv?${new URLSearchParams({ from: v.from, to: v.to, encoding: v.encoding })}`;
    });
  },

  async transfer() {
    await me();
    const show = (target, matches) => {
      target.replaceChildren();
      if (matches.length === 0) { target.textContent = T.none; return; }
      for (const m of matches) {
        const h = document.createElement("h3");
        h.textContent = `${m.municipality_name} (${m.municipality}) — ${T.contact}: ${m.transfer_contact}`;
        target.appendChild(h);
        const t = document.createElement("table");
        t.appendChild(document.createElement("tbody"));
        fill(t, m.doses, ["dose_number", "vaccinated_on", "vaccine", "lot", "site_name"]);
        target.appendChild(t);
      }
    };
    onSubmit("lookup", async (f) => {
      const n = f.elements.my_number.value.trim();
      f.elements.my_number.value = "";
      const r = await api("POST", "/api/transfer/lookup", { my_number: n });
      show(document.getElementById("matches"), r);
    });
    onSubmit("lookup-batch", async (f) => {
      const r = await api("POST", "/api/transfer/lookup-batch", f.elements.file.files[0], "text/csv");
      fill(document.getElementById("batch"), r, ["line", "person_id",
        (x) => x.error || x.matches.map((m) => `${m.municipality_name}: ${m.doses.length}`).join(", ") || T.none,
        (x) => x.matches.map((m) => m.transfer_contact).join(", ")]);
    });
  },

  async users() {
    await me();
    const load = async () => {
      const users = await api("GET", "/api/users");
      fill(document.getElementById("users"), users, ["email", "person", "team", "phone", (u) => (u.transfer_contact ? "✓" : "")], (u) => [
        button(T.remove, async () => {
          await api("POST", "/api/users/remove", { email: u.email });
          say(T.saved);
          await load();
        }),
      ]);
    };
    onSubmit("user", async (f) => {
      await api("POST", "/api/users", values(f));
      f.reset();
      say(T.saved);
      await load();
    });
    await load();
  },

  async tablets() {
    await me();
    const load = async () => {
      const list = await api("GET", "/api/devices");
      fill(document.getElementById("tablets"), list, ["device_id", "site_name", "email", (d) => T[`state_${d.state}`] || d.state], (d) => d.state === "revoked" ? [] : [
        button(T.new_code, async () => showCode(await api("POST", `/api/devices/${d.device_id}/enrolment`))),
        button(T.revoke, async () => {
          if (!confirm(T.confirm_revoke)) return;
          await api("POST", `/api/devices/${d.device_id}/revoke`);
          say(T.saved);
          await load();
        }),
      ]);
    };
    const showCode = (e) => {
      document.getElementById("enrolment").hidden = false;
      document.getElementById("code").textContent = e.code;
      document.getElementById("qr").innerHTML = e.qr_svg;
      say(`${T.saved}: ${e.device_id} (→ ${e.expires})`);
    };
    onSubmit("tablet", async (f) => {
      const v = values(f);
      const body = {
        site: v.kind === "clinic" ? { clinic: v.code } : { site: v.code },
        site_name: v.site_name, email: v.email, address: v.address, delivery: v.delivery,
        doses_per_day: v.doses_per_day ? Number(v.doses_per_day) : null,
      };
      showCode(await api("POST", "/api/devices", body));
      f.reset();
      await load();
    });
    await load();
  },

  async sites() {
    await me();
    const load = async () => fill(document.getElementById("sites"), await api("GET", "/api/sites"), ["code", "name"]);
    onSubmit("site", async (f) => {
      await api("POST", "/api/sites", values(f));
      f.reset();
      say(T.saved);
      await load();
    });
    await load();
  },

  async contacts() {
    await me();
    const known = await api("GET", "/api/contacts");
    for (const f of document.querySelectorAll("form.contact")) {
      const c = known.find((k) => k.kind === f.dataset.kind);
      if (c) for (const k of ["person", "team", "phone", "email"]) f.elements[k].value = c[k];
      f.addEventListener("submit", async (e) => {
        e.preventDefault();
        try {
          await api("POST", "/api/contacts", { kind: f.dataset.kind, ...values(f) });
          say(T.saved);
        } catch (_) { /* said */ }
      });
    }
  },
};

const out = document.getElementById("signout");
if (out) out.addEventListener("click", async () => {
  await fetch("/api/signout", { method: "POST", credentials: "same-origin" });
  sessionStorage.removeItem("vrs_csrf");
  location.href = "/signin";
});

if (pages[page]) pages[page]().catch(() => {});
