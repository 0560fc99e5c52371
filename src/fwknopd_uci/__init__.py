# fwknopd-uci: a Single Packet Authorization server for OpenWrt.
#
# Layout (each sub-package has one job; data flows top to bottom):
#   capture/   packets in: raw-socket sniffer, UDP server, pcap files
#   spa/       the pure protocol core: wire string + keys -> SpaMessage
#   config/    fwknopd.conf and access.conf parsers
#   server/    the pure access decision, the replay cache, the daemon shell
#   firewall/  grants out: nftables (firewall4 layout) and a recording fake
# model.py holds the few value types that cross those boundaries.

__version__ = "0.1.0"
