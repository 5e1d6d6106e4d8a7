#!/usr/bin/env bash
# Network-namespace topology for WOW's real-network tests (docs/testing.md). Needs root, `ip`, `iptables`.
#
#   netns-topology.sh up NAME...   create the WAN and the named parts (idempotent only after `down`)
#   netns-topology.sh down         kill every process in a wowt-* namespace and delete those namespaces
#   netns-topology.sh list         the wowt-* namespaces that exist
#   netns-topology.sh move HOST ROUTER NET
#                                  move host wowt-HOST to a new LAN port of router wowt-ROUTER, addresses
#                                  NET.2 (host) and NET.1 (router): a machine carried to another site
#
# Parts (every namespace is named wowt-*, every underlay address is in 198.18.0.0/15):
#
#   boot    wowt-boot   198.18.0.1     a public host on the WAN
#   pub     wowt-pub    198.18.0.2     another public host
#   site1   wowt-nat1   198.18.0.11 | 198.19.1.1   port-restricted NAT (MASQUERADE; in from the WAN only
#           wowt-site1  198.19.1.2                  established/related), host behind it
#   site2   wowt-nat2   198.18.0.12 | 198.19.2.1   the same for a second site
#           wowt-site2  198.19.2.2
#   fw      wowt-fw     198.18.0.13 | 198.19.3.1   NAT and firewall: forwards out only TCP to port 443
#           wowt-site3  198.19.3.2                  (no UDP at all), in only established/related
#   noudp   wowt-fw6    198.18.0.16 | 198.19.7.1   NAT and firewall: forwards out TCP only (any port, no UDP),
#           wowt-site6  198.19.7.2                  in only established/related
#   site5   wowt-nat5   198.18.0.15 | 198.19.5.1   port-restricted NAT like site1 (a third site)
#           wowt-site5  198.19.5.2
#   sym     wowt-nat4   198.18.0.14 | 198.19.4.1   symmetric NAT: MASQUERADE --random-fully picks a new
#           wowt-site4  198.19.4.2                  random port for every remote (endpoint-dependent mapping)
#   proxy   wowt-pxy    198.18.0.17 | 198.19.8.1   a corporate exit: no routing and no NAT (FORWARD DROP), and
#           wowt-site7  198.19.8.2                  from the LAN it takes only TCP to its port 3128, where the
#                                                   test runs an HTTP proxy: the site's only way out
#
# The WAN is routed, not bridged: wowt-wan is a router, and every WAN-side host or NAT has its own veth link
# to it (unnumbered point-to-point: the host's address as a /32 on its eth0, the router's 198.18.255.254/32 on
# every one of its ports, a host route each way). So a packet between two sites crosses three routers (NAT,
# wowt-wan, NAT): one sent with IP TTL 2 passes its own NAT and dies at wowt-wan, which a hole punch relies
# on. Every host or router has its WAN or LAN interface named eth0; routers name their LAN side lan0. No
# interface is created in the namespace this script is run from.
set -euo pipefail

readonly PREFIX=wowt-

ns() { ip netns exec "$1" "${@:2}"; }

make_ns() {
    ip netns add "$1"
    ip -n "$1" link set lo up
}

# The WAN router's address on each of its ports; hosts route everything through it.
readonly WAN_ROUTER=198.18.255.254

wan() {
    [[ -e /run/netns/${PREFIX}wan ]] && return 0
    make_ns "${PREFIX}wan"
    ns "${PREFIX}wan" sysctl -qw net.ipv4.ip_forward=1
}

# wan_port NS ADDRESS: a veth from NS's eth0 to the WAN router, ADDRESS/32 on it, routed both ways.
wan_port() {
    local name=$1 address=$2 port="w-${1#"${PREFIX}"}"
    ip -n "${PREFIX}wan" link add "${port}" type veth peer name eth0 netns "${name}"
    ip -n "${PREFIX}wan" addr add "${WAN_ROUTER}/32" dev "${port}"
    ip -n "${PREFIX}wan" link set "${port}" up
    ip -n "${PREFIX}wan" route add "${address}/32" dev "${port}"
    ip -n "${name}" addr add "${address}/32" dev eth0
    ip -n "${name}" link set eth0 up
    ip -n "${name}" route add "${WAN_ROUTER}/32" dev eth0
    ip -n "${name}" route add default via "${WAN_ROUTER}" dev eth0
}

public_host() {
    make_ns "${PREFIX}$1"
    wan_port "${PREFIX}$1" "$2"
}

# lan_port ROUTER HOST PORT NET: a veth from ROUTER's PORT (NET.1/24) to HOST's eth0 (NET.2/24, default route
# through the router); the router lets back in only what belongs to connections from that LAN.
lan_port() {
    local router=$1 host=$2 port=$3 net=$4
    ip -n "${router}" link add "${port}" type veth peer name eth0 netns "${host}"
    ip -n "${router}" addr add "${net}.1/24" dev "${port}"
    ip -n "${router}" link set "${port}" up
    ip -n "${host}" addr add "${net}.2/24" dev eth0
    ip -n "${host}" link set eth0 up
    ip -n "${host}" route add default via "${net}.1"
    ns "${router}" iptables -A FORWARD -i eth0 -o "${port}" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
}

# site ROUTER HOST WAN_ADDRESS LAN_NET: a router on the WAN doing MASQUERADE, a host on its LAN LAN_NET.1/.2.
site() {
    local router=${PREFIX}$1 host=${PREFIX}$2 wan_address=$3 net=$4
    make_ns "${router}"
    make_ns "${host}"
    wan_port "${router}" "${wan_address}"
    ns "${router}" sysctl -qw net.ipv4.ip_forward=1
    ns "${router}" iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE
    ns "${router}" iptables -P FORWARD DROP
    lan_port "${router}" "${host}" lan0 "${net}"
}

# move HOST ROUTER NET: HOST's eth0 goes away (with its addresses and routes) and comes back on a new port of
# ROUTER, which forwards it out like its own LAN.
move() {
    local host=${PREFIX}$1 router=${PREFIX}$2 net=$3 port
    port="lan$(($(ip -n "${PREFIX}$2" -o link show | grep -c ' lan') ))"
    ip -n "${host}" link del eth0
    lan_port "${router}" "${host}" "${port}" "${net}"
    ns "${router}" iptables -A FORWARD -i "${port}" -o eth0 -j ACCEPT
}

up_part() {
    case "$1" in
        boot) public_host boot 198.18.0.1 ;;
        pub) public_host pub 198.18.0.2 ;;
        site1)
            site nat1 site1 198.18.0.11 198.19.1
            ns "${PREFIX}nat1" iptables -A FORWARD -i lan0 -o eth0 -j ACCEPT
            ;;
        site2)
            site nat2 site2 198.18.0.12 198.19.2
            ns "${PREFIX}nat2" iptables -A FORWARD -i lan0 -o eth0 -j ACCEPT
            ;;
        fw)
            site fw site3 198.18.0.13 198.19.3
            ns "${PREFIX}fw" iptables -A FORWARD -i lan0 -o eth0 -p tcp --dport 443 -j ACCEPT
            ;;
        noudp)
            site fw6 site6 198.18.0.16 198.19.7
            ns "${PREFIX}fw6" iptables -A FORWARD -i lan0 -o eth0 -p tcp -j ACCEPT
            ;;
        site5)
            site nat5 site5 198.18.0.15 198.19.5
            ns "${PREFIX}nat5" iptables -A FORWARD -i lan0 -o eth0 -j ACCEPT
            ;;
        proxy)
            make_ns "${PREFIX}pxy"
            make_ns "${PREFIX}site7"
            wan_port "${PREFIX}pxy" 198.18.0.17
            ns "${PREFIX}pxy" iptables -P FORWARD DROP
            lan_port "${PREFIX}pxy" "${PREFIX}site7" lan0 198.19.8
            ns "${PREFIX}pxy" iptables -A INPUT -i lan0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
            ns "${PREFIX}pxy" iptables -A INPUT -i lan0 -p tcp --dport 3128 -j ACCEPT
            ns "${PREFIX}pxy" iptables -A INPUT -i lan0 -j DROP
            ;;
        sym)
            site nat4 site4 198.18.0.14 198.19.4
            ns "${PREFIX}nat4" iptables -t nat -R POSTROUTING 1 -o eth0 -j MASQUERADE --random-fully
            ns "${PREFIX}nat4" iptables -A FORWARD -i lan0 -o eth0 -j ACCEPT
            ;;
        *)
            echo "netns-topology.sh: unknown part '$1' (boot, pub, site1, site2, site5, fw, noudp, sym, proxy)" >&2
            return 2
            ;;
    esac
}

namespaces() {
    ip netns list | awk '{print $1}' | grep "^${PREFIX}" || true
}

down() {
    local name pid
    for name in $(namespaces); do
        for pid in $(ip netns pids "${name}" 2>/dev/null); do
            kill -KILL "${pid}" 2>/dev/null || true
        done
    done
    for name in $(namespaces); do
        ip netns del "${name}" 2>/dev/null || true
    done
}

case "${1:-}" in
    up)
        shift
        [[ $# -gt 0 ]] || { echo "usage: $0 up NAME... (boot, pub, site1, site2, site5, fw, noudp, sym, proxy)" >&2; exit 2; }
        wan
        for part in "$@"; do up_part "${part}"; done
        ;;
    down) down ;;
    list) namespaces ;;
    move)
        [[ $# -eq 4 ]] || { echo "usage: $0 move HOST ROUTER NET (e.g. move site2 nat5 198.19.6)" >&2; exit 2; }
        move "$2" "$3" "$4"
        ;;
    *)
        echo "usage: $0 up NAME... | down | list | move HOST ROUTER NET" >&2
        exit 2
        ;;
esac
