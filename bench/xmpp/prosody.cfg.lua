-- Prosody 0.12 (Debian `prosody`) for bench/xmpp/run.sh. Rendered by run.sh: @DIR@ is the server's
-- scratch directory, @CERTS@ holds cert.pem and key.pem, @PORT@ the loopback HTTPS port. Like Iris: WSS only, message archive
-- (mod_mam, mod_muc_mam) in an on-disk SQLite database, XEP-0198 (mod_smacks).
run_as_root = true
daemonize = false
pidfile = "@DIR@/prosody.pid"
data_path = "@DIR@"
log = { warn = "@DIR@/prosody.log" }
network_backend = "epoll"

modules_enabled = {
    "roster"; "saslauth"; "tls"; "disco"; "carbons"; "mam"; "smacks"; "ping";
    "register"; "http"; "websocket";
}
modules_disabled = { "s2s" }
allow_registration = true
registration_whitelist = { "127.0.0.1", "::1" }

authentication = "internal_hashed"
storage = "sql"
sql = { driver = "SQLite3", database = "@DIR@/prosody.sqlite" }
archive_expires_after = "never"
default_archive_policy = true
max_archive_query_results = 250

c2s_ports = { }
http_ports = { }
https_ports = { @PORT@ }
https_interfaces = { "127.0.0.1" }
https_ssl = { certificate = "@CERTS@/cert.pem"; key = "@CERTS@/key.pem" }
consider_websocket_secure = true
limits = { c2s = { rate = "100mb/s" } }

VirtualHost "localhost"
    ssl = { certificate = "@CERTS@/cert.pem"; key = "@CERTS@/key.pem" }

Component "conference.localhost" "muc"
    modules_enabled = { "muc_mam" }
    muc_room_locking = false
    muc_log_by_default = true
    muc_log_all_rooms = true
