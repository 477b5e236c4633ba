# Shared by scripts/up and scripts/test. Source it; do not run it.

# The Debian packages the project needs. Later parts add theirs here, so that both
# commands install everything on a fresh machine.
VRS_DEBIAN_PACKAGES=(
    build-essential # C toolchain for -sys crates (libfuzzer-sys in the fuzz check)
    pkg-config
    libssl-dev      # SQLCipher (rusqlite bundled-sqlcipher) links Debian's libcrypto
    postgresql      # the server's second backend; tests start a throwaway cluster
    python3 python3-venv # schemathesis (PyPI) for scripts/api-fuzz
    curl            # scripts wait for a server's /api/health
    sqlite3         # the import bench's raw load of the same file, for comparison
    libtesseract-dev libleptonica-dev libclang-dev tesseract-ocr-eng # the scanner's OCR (tesseract crate)
    fonts-ocr-b fonts-noto-cjk # the fixture generator's fonts (OCR-B line, Japanese text)
    chromium chromium-driver # the staff web pages, tested end to end in headless chromium
    libwebkit2gtk-4.1-dev # the tablet app (Tauri 2's web view; pulls gtk3, soup3, jsc)
    webkit2gtk-driver xvfb xauth # the tablet app, tested end to end under Xvfb by WebKitWebDriver
)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# Installs whichever of the given Debian packages are missing; does nothing (and needs
# no network) when all are there.
ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    say "installing Debian packages: ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "cargo not found: install Rust first (https://rustup.rs), then run this again" >&2
        exit 2
    fi
    # The toolchain components the test command uses.
    if command -v rustup >/dev/null 2>&1; then
        rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
        rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
    fi
}

# tauri-driver (WebDriver for the tablet app's end-to-end test), from crates.io into
# target/tools once; the test finds it there.
ensure_tauri_driver() {
    local root=target/tools
    if [ ! -x "$root/bin/tauri-driver" ]; then
        say "installing tauri-driver into $root"
        cargo install --locked --quiet --root "$root" tauri-driver --version '^2'
    fi
    export VRS_TAURI_DRIVER="$PWD/$root/bin/tauri-driver"
}

# Tesseract (the scanner's OCR) spins OpenMP threads; one per process is ~8x faster here.
export OMP_THREAD_LIMIT=1
