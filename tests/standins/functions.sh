# Stand-in for OpenWrt's /lib/functions.sh, at the documented boundary: only
# what the package's maintainer scripts use, default_postinst and
# default_prerm, as the OpenWrt SDK's generated postinst/prerm call them
# (openwrt.md 5; behaviour described there and in the report of this test).
# It acts only inside $IPKG_INSTROOT (an image build); asked to act on the
# live system ($IPKG_INSTROOT empty) it refuses, so a test can never touch
# the host's /etc.
#
#   default_postinst <info>/<pkg>.postinst   runs <pkg>.postinst-pkg, then
#       `rc.common <root>/etc/init.d/X enable` for each init script in
#       <pkg>.list (uci-defaults run at first boot, not here)
#   default_prerm <info>/<pkg>.prerm          runs <pkg>.prerm-pkg, then
#       `rc.common <root>/etc/init.d/X disable` likewise
# Calls are recorded in $STANDIN_LOG when it is set.

standin_note() {
	[ -z "$STANDIN_LOG" ] || printf '%s\n' "$*" >>"$STANDIN_LOG"
}

# $1 - path of the maintainer script; $2 - action (enable or disable); $3 - suffix
standin_maintainer() {
	standin_root="$IPKG_INSTROOT"
	if [ -z "$standin_root" ]; then
		echo "functions.sh stand-in: refusing to act on the live system" >&2
		return 1
	fi
	standin_pkg="$(basename "${1%.*}")"
	standin_info="$standin_root/usr/lib/opkg/info/$standin_pkg"
	standin_note "default_$3 $standin_pkg"
	standin_ret=0
	if [ -f "$standin_info.$3-pkg" ]; then
		# shellcheck source=/dev/null
		(. "$standin_info.$3-pkg") || standin_ret=$?
	fi
	while read -r standin_script; do
		case "$standin_script" in
		/etc/init.d/*)
			sh "$standin_root/etc/rc.common" "$standin_root$standin_script" "$2" ||
				standin_ret=$?
			;;
		esac
	done <"$standin_info.list"
	return "$standin_ret"
}

default_postinst() { standin_maintainer "$1" enable postinst; }
default_prerm() { standin_maintainer "$1" disable prerm; }
