#!/usr/bin/env bash
# Runs ../shared/peerbench with WOW as its `custom` contestant (BENCHMARKS.md, "Virtual network").
#
#   sudo Scripts/peerbench-wow.sh                      # WOW and every peer: baseline wireguard_go tinc ... n2n
#   sudo Scripts/peerbench-wow.sh yggdrasil            # WOW and the peers named (baseline always)
#   sudo WOW_MTU=9000 Scripts/peerbench-wow.sh         # WOW's TUN at another MTU (default: WOW's default)
#   sudo WOW_OFFLOAD=false Scripts/peerbench-wow.sh    # without TUN offloads (default: on)
#   sudo WOW_FEC=off Scripts/peerbench-wow.sh          # udp parity off, or a fixed group size 2-32 (default: auto)
#   env: PEERBENCH=path/to/peerbench.sh  WOW_BINARY=path/to/wow (default: builds .build/release/wow)
#        DUR, RUNS, NETEM as peerbench takes them
#
# Two secured nodes: a in namespace pbA (198.18.0.1, virtual IP 100.64.0.1) and b in pbB (198.18.0.2,
# 100.64.0.2) bootstrapping through a over udp; each a fresh network's member with its TUN device `wow0`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
PEERBENCH=${PEERBENCH:-${ROOT}/../shared/peerbench/peerbench.sh}
[[ -x "${PEERBENCH}" || -f "${PEERBENCH}" ]] || { echo "peerbench-wow.sh: no peerbench at ${PEERBENCH} (set PEERBENCH)" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "peerbench-wow.sh: run as root (peerbench creates network namespaces)" >&2; exit 2; }

if [[ -z "${WOW_BINARY:-}" ]]; then
    swift build -c release --product wow >&2
    WOW_BINARY=${ROOT}/.build/release/wow
fi
[[ -x "${WOW_BINARY}" ]] || { echo "peerbench-wow.sh: ${WOW_BINARY} is not an executable" >&2; exit 2; }

WORK=$(mktemp -d /tmp/peerbench-wow.XXXX)
trap 'rm -rf "${WORK}"' EXIT
chmod 700 "${WORK}"
"${WOW_BINARY}" ca init --name peerbench --dir "${WORK}" >/dev/null
MTU_LINE=""
[[ -n "${WOW_MTU:-}" ]] && MTU_LINE=", mtu: ${WOW_MTU}"
[[ -n "${WOW_OFFLOAD:-}" ]] && MTU_LINE="${MTU_LINE}, offload: ${WOW_OFFLOAD}"
for node in a b; do
    ip=100.64.0.1 listen=198.18.0.1:4000 bootstrap=""
    if [[ ${node} == b ]]; then ip=100.64.0.2 listen=198.18.0.2:4000 bootstrap='bootstrap: ["udp://198.18.0.1:4000"]'; fi
    "${WOW_BINARY}" keygen --out "${WORK}/${node}.key" >/dev/null
    "${WOW_BINARY}" cert issue --ca-key "${WORK}/ca.key" --node-key "${WORK}/${node}.key" --name "${node}" \
        --vip "${ip}" --out "${WORK}/${node}.crt" >/dev/null
    cat >"${WORK}/${node}.yml" <<YAML
node: { name: pb-${node} }
${bootstrap}
transports:
  - scheme: udp
    settings: { listen: "${listen}"${WOW_FEC:+, fec: ${WOW_FEC}} }
overlords:
  - name: leaf
  - name: structured.near
  - name: structured.far
  - name: structured.shortcut
security: { ca: ca.crt, certificate: ${node}.crt, key: ${node}.key }
virtual_network: { device: wow0${MTU_LINE} }
YAML
done

VERSION="$(git -C "${ROOT}" rev-parse --short HEAD 2>/dev/null || echo unknown) (udp, AES-256-GCM, MTU ${WOW_MTU:-default 1260}, offload ${WOW_OFFLOAD:-on}, fec ${WOW_FEC:-auto})"
run_node() { echo "exec ${WOW_PREFIX:-} ${WOW_BINARY} run --config ${WORK}/$1.yml --control ${WORK}/$1.sock --log-level warning"; }
PEERS=("$@")
[[ ${#PEERS[@]} -gt 0 ]] || PEERS=(wireguard_go tinc nebula yggdrasil openvpn n2n)
CUSTOM_NAME=wow CUSTOM_VERSION="${VERSION}" CUSTOM_A="$(run_node a)" CUSTOM_B="$(run_node b)" \
    bash "${PEERBENCH}" custom "${PEERS[@]}"
