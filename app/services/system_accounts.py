"""The OS accounts a node has that are not panel users."""

from __future__ import annotations

# The system accounts of Debian (base-passwd, systemd and the packages the node's roles install: UIDs
# below 1000, which the agent never lists as panel accounts). A panel user of the same name would be that
# account on the node (its files, its processes, its suspension, its deletion), so these names are
# reserved (users.RESERVED_NAMES adds the accounts Hostfleet itself makes); a scheduler job may run as
# one of them without being a panel user.
SYSTEM_ACCOUNTS = frozenset({
    # base-passwd
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy", "www-data",
    "backup", "list", "irc", "gnats", "nobody", "_apt",
    # systemd, D-Bus, OpenSSH and the base system's daemons
    "systemd-network", "systemd-resolve", "systemd-timesync", "systemd-coredump", "systemd-oom", "messagebus",
    "sshd", "polkitd", "tss", "uuidd", "tcpdump", "avahi", "ntp", "ntpsec", "_chrony", "statd", "_rpc",
    "dnsmasq", "unbound", "usbmux", "rtkit",
    # the roles' packages: bind9, exim4, dovecot, the databases, mail filters, FTP
    "bind", "Debian-exim", "dovecot", "dovenull", "postgres", "mysql", "redis", "memcache", "nginx", "opendkim",
    "opendmarc", "clamav", "debian-spamd", "_rspamd", "postfix", "vmail", "ftp", "proftpd", "ftpsecure",
    "Debian-snmp",
})
