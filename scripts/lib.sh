# Shared by the scripts: the Node tools this project installs for itself (Azurite, Node 22, the MCP
# conformance suite, the Bicep parser, playwright-core), Debian's Chromium for the browser tests, an
# Azurite started on free loopback ports, and the build of the handler binary that is shipped.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS="$ROOT/test-tools"
export PATH="$TOOLS/node_modules/.bin:$PATH"

# Installs (again) whenever package-lock.json changed since the last install, so a pull that adds a
# tool needs no manual step.
ensure_node_tools() {
  local stamp="$TOOLS/node_modules/.installed-from" wanted
  wanted=$(sha256sum "$TOOLS/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ] || ! "$TOOLS/node_modules/.bin/node" --version >/dev/null 2>&1; then
    echo "== installing test tools (Azurite, Node 22, MCP conformance, tree-sitter-bicep, playwright-core) from npm"
    (cd "$TOOLS" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$wanted" >"$stamp"
  fi
}

# The approval page is tested in a real browser: Debian's Chromium, driven headless by playwright-core
# (test-tools/browser), which downloads no browser of its own.
ensure_chromium() {
  local chromium=/usr/bin/chromium
  if [ -x "$chromium" ]; then return 0; fi
  echo "== installing Chromium (Debian) for the browser tests of the approval page"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "Chromium ($chromium) is missing and there is no apt-get; install Debian's chromium package and run again" >&2
    return 1
  fi
  # Without package lists (a fresh machine) the install fails: fetch them and try once more.
  if ! $sudo apt-get install -y -qq --no-install-recommends chromium; then
    echo "== apt-get update, then installing Chromium again"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends chromium || true
  fi
  if [ ! -x "$chromium" ]; then
    echo "could not install Chromium ($chromium); install Debian's chromium package and run again" >&2
    return 1
  fi
}

# rustfmt and clippy come with the toolchain's default profile; say so plainly where they are missing.
ensure_rust_components() {
  local component
  for component in fmt clippy; do
    if ! cargo "$component" --version >/dev/null 2>&1; then
      echo "== installing the Rust component for cargo $component (rustup)"
      rustup component add "$([ "$component" = fmt ] && echo rustfmt || echo clippy)" || {
        echo "cargo $component is missing and rustup could not install it" >&2; return 1; }
    fi
  done
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Starts Azurite in the background and exports STORAGE_CONNECTION_STRING for it.
start_azurite() {
  local blob queue table data
  blob=$(free_port); queue=$(free_port); table=$(free_port)
  data=$(mktemp -d "${TMPDIR:-/tmp}/azurite.XXXXXX")
  azurite --silent --skipApiVersionCheck --disableTelemetry --location "$data" \
    --blobHost 127.0.0.1 --blobPort "$blob" --queueHost 127.0.0.1 --queuePort "$queue" \
    --tableHost 127.0.0.1 --tablePort "$table" >"$data/azurite.log" 2>&1 &
  AZURITE_PID=$!
  AZURITE_DATA=$data
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$blob") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$queue") 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  if ! kill -0 "$AZURITE_PID" 2>/dev/null; then
    echo "Azurite did not start:"; cat "$data/azurite.log"; return 1
  fi
  # The well-known Azurite development account (public, documented by Microsoft).
  local key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
  export STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$blob/devstoreaccount1;QueueEndpoint=http://127.0.0.1:$queue/devstoreaccount1;"
  echo "== Azurite on blob $blob, queue $queue (data in $data)"
}

stop_azurite() {
  if [ -n "${AZURITE_PID:-}" ]; then kill "$AZURITE_PID" 2>/dev/null || true; wait "$AZURITE_PID" 2>/dev/null || true; fi
  if [ -n "${AZURITE_DATA:-}" ]; then rm -rf "$AZURITE_DATA"; fi
}

# The Functions host on Linux runs ./handler from the package; a static musl binary has no
# dependency on the image's glibc. aws-lc (TLS) compiles C, so the musl C compiler is needed too.
SHIPPED_TARGET=x86_64-unknown-linux-musl
SHIPPED_HANDLER="${CARGO_TARGET_DIR:-$ROOT/target}/$SHIPPED_TARGET/release/handler"

ensure_musl_toolchain() {
  if ! rustup target list --installed 2>/dev/null | grep -qx "$SHIPPED_TARGET"; then
    echo "== installing the Rust target $SHIPPED_TARGET (rustup)"
    if ! rustup target add "$SHIPPED_TARGET"; then
      echo "could not install the Rust target $SHIPPED_TARGET; install it with 'rustup target add $SHIPPED_TARGET' and run again" >&2
      return 1
    fi
  fi
  if ! command -v musl-gcc >/dev/null 2>&1; then
    echo "== installing musl-tools (Debian) for the musl C compiler"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    if ! command -v apt-get >/dev/null 2>&1 || ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq musl-tools; }; then
      echo "could not install musl-tools (the musl C compiler, musl-gcc); install it with your package manager and run again" >&2
      return 1
    fi
  fi
}

# Builds $SHIPPED_HANDLER, the binary scripts/package puts in the app and scripts/bench measures:
# without the embedded sandbox (Azure never runs it).
build_shipped_handler() {
  ensure_musl_toolchain || return 1
  echo "== building the static handler binary ($SHIPPED_TARGET, release)"
  (cd "$ROOT" && CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release --locked --target "$SHIPPED_TARGET" -p handler --no-default-features)
}
