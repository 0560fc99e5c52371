# OpenWrt integration of fwknopd-uci: the UCI file reader and writer (uci),
# and the code that turns /etc/config/fwknopd into fwknopd.conf and
# access.conf for the daemon. Import the modules directly; this package
# re-exports nothing so that importing one part never pulls in the others.
