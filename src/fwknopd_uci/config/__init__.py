# Configuration layer of fwknopd-uci: fwknopd.conf and access.conf parsed
# into frozen values, with fwknopd 2.x's syntax, defaults, fatal errors and
# warnings (spa-protocol.md 7 and 8), plus the `-D` dump text.
#
# Module map: errors (ConfigError), lists (address / port lists, C integers),
# server_conf (fwknopd.conf and the shared line syntax), access_conf
# (stanzas and includes), dump (the -D text).

from __future__ import annotations

from .access_conf import ACCESS_VARIABLES, SECRET_VARIABLES, AccessStanza, parse_access_conf
from .dump import dump_config
from .errors import ConfigError
from .lists import AddressList, parse_address_list, parse_port_list
from .server_conf import SERVER_VARIABLES, ServerConfig, parse_server_conf

__all__ = [
    "ACCESS_VARIABLES",
    "SECRET_VARIABLES",
    "SERVER_VARIABLES",
    "AccessStanza",
    "AddressList",
    "ConfigError",
    "ServerConfig",
    "dump_config",
    "parse_access_conf",
    "parse_address_list",
    "parse_port_list",
    "parse_server_conf",
]
