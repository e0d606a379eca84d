#!/usr/bin/env bash
# Set up a fresh Debian machine for Ironwatch: Debian packages, then a virtualenv.
#   scripts/setup.sh demo   mosquitto + socat, and the edge/sim/cloud extras
#   scripts/setup.sh test   also InfluxDB, VictoriaMetrics, PostgreSQL, Prometheus, Chromium, and
#                           the dev extras
# Nothing is started here: the demo and the tests start their own servers on free
# loopback ports and stop them by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-demo}"
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"

# fonts-wqy-microhei: Chinese glyphs for the dashboard's zh-CN pages in the browser tests.
case "$what" in
  demo) debs=(mosquitto mosquitto-clients socat); extras="edge,sim,cloud" ;;
  test) debs=(mosquitto mosquitto-clients socat influxdb victoria-metrics postgresql chromium
             prometheus fonts-wqy-microhei)
        extras="dev" ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac

missing=()
for pkg in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "== installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's packaging may start services; Ironwatch runs its own instances, so stop those.
  for svc in mosquitto influxdb victoria-metrics postgresql prometheus; do
    $SUDO systemctl stop "$svc" >/dev/null 2>&1 || true
  done
fi

stamp="$VENV/.ironwatch-$what-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "== creating $VENV with $("$PYTHON" --version) and installing ironwatch[$extras]"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip==25.3
  "$VENV/bin/python" -m pip install -q -e ".[$extras]"
  touch "$stamp"
fi
