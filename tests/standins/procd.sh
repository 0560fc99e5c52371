# Recording stand-in for OpenWrt's /lib/functions/procd.sh (the procd_* and
# json_* helpers an init script calls), at the documented boundary only
# (openwrt.md 5): nothing is sent to procd. Every call appends one line to
# $STANDIN_LOG, the function name and then each argument, separated by the
# ASCII unit separator (\037), so arguments may hold spaces.
# tests/test_package_initscript.py turns the lines back into instances.

standin_record() {
	{
		printf '%s' "$1"
		shift
		for standin_arg in "$@"; do
			printf '\037%s' "$standin_arg"
		done
		printf '\n'
	} >>"${STANDIN_LOG:?STANDIN_LOG must name the recording file}"
}

procd_open_service() { standin_record procd_open_service "$@"; }
procd_open_instance() { standin_record procd_open_instance "$@"; }
procd_set_param() { standin_record procd_set_param "$@"; }
procd_append_param() { standin_record procd_append_param "$@"; }
procd_close_instance() { standin_record procd_close_instance "$@"; }
procd_open_data() { standin_record procd_open_data "$@"; }
procd_close_data() { standin_record procd_close_data "$@"; }
procd_add_reload_trigger() { standin_record procd_add_reload_trigger "$@"; }
procd_add_reload_interface_trigger() {
	standin_record procd_add_reload_interface_trigger "$@"
}
procd_add_interface_trigger() { standin_record procd_add_interface_trigger "$@"; }
procd_add_validation() { standin_record procd_add_validation "$@"; }
procd_set_config_changed() { standin_record procd_set_config_changed "$@"; }
procd_kill() { standin_record procd_kill "$@"; }

# procd sends the service after start_service; the triggers are collected
# on the way, in the same shell (so they see start_service's globals).
procd_close_service() {
	standin_record procd_open_trigger
	if type service_triggers >/dev/null 2>&1; then
		service_triggers
	fi
	standin_record procd_close_trigger
	standin_record procd_close_service
}

json_add_array() { standin_record json_add_array "$@"; }
json_close_array() { standin_record json_close_array "$@"; }
json_add_object() { standin_record json_add_object "$@"; }
json_close_object() { standin_record json_close_object "$@"; }
json_add_string() { standin_record json_add_string "$@"; }
json_add_int() { standin_record json_add_int "$@"; }
json_add_boolean() { standin_record json_add_boolean "$@"; }
