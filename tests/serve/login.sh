#!/bin/bash
# --db-login runs mongosh (here a stand-in that records what it was given): the password reaches it through the
# script it reads, never its command line; the script's FIFO is gone afterwards.
. ./tests/env.sh
. "$top_srcdir/tests/serve/lib.sh"

mkdir -p "$T/bin"
cat > "$T/bin/mongosh" <<EOS
#!/bin/sh
printf '%s\n' "\$@" > "$T/argv"
env > "$T/env"
for a; do case "\$a" in *.js) cat "\$a" > "$T/script"; ls -ld "\$(dirname "\$a")" > "$T/dirmode";; esac; done
exit 0
EOS
chmod +x "$T/bin/mongosh"
# The TLS key file's password and the CRL file go the same private way as the password; the secret N_* variables
# nemesyst read are not in the shell's environment.
N_DB_PASSWORD='pa55 "word"' N_DB_TLS_CERTIFICATE_KEY_FILE_PASSWORD='k&y=pw%' PATH="$T/bin:$PATH" \
    serve --db-login --db-ip db.example --db-port 4242 --db-tls --db-tls-ca-file /etc/ca.pem \
    --db-tls-certificate-key-file /etc/client.pem --db-tls-crl-file /etc/revoked.crl 2>"$T/err" ||
    { cat "$T/err" >&2; fail "login"; }
[ -s "$T/argv" ] || fail "the shell did not run"
! grep -q 'pa55' "$T/argv" || fail "password on the shell's command line"
! grep -q 'k&y\|k%26y' "$T/argv" || fail "key file password on the shell's command line"
! grep -Eq '^N_DB_(PASSWORD|TLS_CERTIFICATE_KEY_FILE_PASSWORD)=|pa55|k&y' "$T/env" || fail "a secret in the shell's environment"
grep -qF '&tls=true&tlsCAFile=/etc/ca.pem&tlsCertificateKeyFile=/etc/client.pem&tlsCertificateKeyFilePassword=k%26y%3Dpw%25&tlsCRLFile=/etc/revoked.crl' "$T/script" ||
    fail "TLS settings not in the script: $(cat "$T/script")"
grep -qx -- '--nodb' "$T/argv" || fail "argv: $(cat "$T/argv")"
grep -qF 'connect("mongodb://db.example:4242/nemesyst' "$T/script" || fail "script: $(cat "$T/script")"
grep -qF 'pwd: "pa55 \"word\""' "$T/script" || fail "password not in the script: $(cat "$T/script")"
grep -q '^drwx------' "$T/dirmode" || fail "script directory not private: $(cat "$T/dirmode")"
dir=$(dirname "$(grep '\.js$' "$T/argv")")
[ ! -e "$dir" ] || fail "login directory $dir left behind"
! grep -q 'pa55' "$T/err" || fail "password in the log"

if ! PATH=/usr/bin:/bin command -v mongosh >/dev/null && ! PATH=/usr/bin:/bin command -v mongo >/dev/null; then
    PATH=/usr/bin:/bin expect_fail 3 "neither mongosh nor mongo" "$SERVE_TOOL" --db-login
fi
exit 0
