#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: system packages, the virtual environments, and the
# terraform CLI config that points at a local provider mirror when the machine has one.
# `make demo` and `make test` call this; running it twice does nothing the second time.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=.venv
CHECKOV_VENV=.venv-checkov
CHECKOV_VERSION=3.3.30   # in its own venv: checkov pins boto3/networkx versions our stack outgrew

need_apt=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
# The gateway switches traffic in Lua (no reload) and reads routes with cjson; haproxy is only
# the alternative bench/cutover.py --haproxy measures.
[ -e /usr/lib/nginx/modules/ngx_http_lua_module.so ] || need_apt+=(libnginx-mod-http-lua)
ls /usr/lib/*/lua/5.1/cjson.so >/dev/null 2>&1 || need_apt+=(lua-cjson)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need_apt+=(haproxy)
command -v softhsm2-util >/dev/null 2>&1 || need_apt+=(softhsm2)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if ! command -v pg_ctl >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  need_apt+=(postgresql)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing system packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    # Debian starts nginx on install; we run our own gateways on loopback ports.
    (command -v systemctl >/dev/null && systemctl disable --now nginx) >/dev/null 2>&1 || true
    (nginx -s quit) >/dev/null 2>&1 || true
    (command -v systemctl >/dev/null && systemctl disable --now haproxy) >/dev/null 2>&1 || true
  else
    echo "setup: please install: ${need_apt[*]} (sudo apt-get install ${need_apt[*]})" >&2
  fi
fi

stamp=$VENV/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  echo "setup: creating $VENV and installing the project (pinned by constraints.txt)"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -c constraints.txt -e '.[dev,pulumi]'
  touch "$stamp"
fi

# The KFP SDK without its own pins (requests==2.33.0, kubernetes<31): the rest of its imports are in
# pyproject.toml; tests/pipelines run its local runner and compiler against our versions.
KFP_VERSION=2.17.3
KFP_K8S_VERSION=2.17.0
kstamp=$VENV/.installed-kfp-$KFP_VERSION
if [ ! -f "$kstamp" ] || [ "$stamp" -nt "$kstamp" ]; then
  echo "setup: installing kfp $KFP_VERSION and kfp-kubernetes $KFP_K8S_VERSION (--no-deps)"
  "$VENV/bin/pip" install -q --no-deps "kfp==$KFP_VERSION" "kfp-kubernetes==$KFP_K8S_VERSION"
  touch "$kstamp"
fi

cstamp=$CHECKOV_VENV/.installed-$CHECKOV_VERSION
if [ ! -f "$cstamp" ]; then
  echo "setup: creating $CHECKOV_VENV (checkov $CHECKOV_VERSION)"
  [ -x "$CHECKOV_VENV/bin/python" ] || "$PY" -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/pip" install -q "checkov==$CHECKOV_VERSION"
  touch "$cstamp"
fi

# npm: the CDKTF CLI (`npx cdktf ...` from the repository root) and the embedded OpenID provider,
# pinned exactly in package.json and package-lock.json. npm records what it installed in
# node_modules/.package-lock.json: newer than the lock file means nothing to do.
if command -v npm >/dev/null 2>&1; then
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "setup: installing the Node tools (npm ci: cdktf-cli, oidc-provider)"
    npm ci --no-audit --no-fund --loglevel=error
  fi
else
  echo "setup: npm not found: install Node.js 20+ (the CDKTF CLI and the embedded OpenID provider need it)" >&2
fi
