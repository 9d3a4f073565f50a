#!/bin/sh
# Writes the dev overlay's Secrets (git-ignored) with fresh random values:
#   postgres.env        the in-cluster PostgreSQL's password
#   database.env        ANTIFRAUD_DATABASE_URL pointing at it
#   identity-keys.env   identity's data key and index key
#   report-keys.env     the report service's (texts as typed, sealed)
#   warning-keys.env    the warning service's (phone numbers, sealed)
#   console-keys.env    the console's session keys (shared by its replicas)
#   tokens/             each process's Ed25519 token signing key and its public key
#   tls/                a CA (tls/ca.key, tls/ca.crt) and per process tls/<name>/tls.crt,
#                       tls.key and ca.crt: its certificate names it (DNS:<name> and
#                       DNS:<name>.antifraud.svc), as `antifraud tls-certs` makes them
# Existing files are kept (sealed data stays readable); delete them to start over.
set -eu
cd "$(dirname "$0")"
umask 077

random_b64() {
    # 32 random bytes, base64: what identity's keys are.
    head -c 32 /dev/urandom | base64 | tr -d '\n'
}

if [ ! -f postgres.env ] || [ ! -f database.env ]; then
    password=$(head -c 24 /dev/urandom | base64 | tr -d '\n/+=')
    printf 'POSTGRES_PASSWORD=%s\n' "$password" > postgres.env
    printf 'ANTIFRAUD_DATABASE_URL=postgresql+asyncpg://antifraud:%s@postgres:5432/antifraud\n' \
        "$password" > database.env
fi
for service in identity report warning console; do
    if [ ! -f "$service-keys.env" ]; then
        prefix=$(echo "ANTIFRAUD_${service}" | tr '[:lower:]' '[:upper:]')
        {
            printf '%s_DATA_KEYS=k1:%s\n' "$prefix" "$(random_b64)"
            printf '%s_INDEX_KEY=%s\n' "$prefix" "$(random_b64)"
        } > "$service-keys.env"
    fi
done
mkdir -p tokens
for issuer in gateway identity risk report warning; do
    if [ ! -f "tokens/$issuer-1.key" ]; then
        openssl genpkey -algorithm ed25519 -out "tokens/$issuer-1.key"
        openssl pkey -in "tokens/$issuer-1.key" -pubout -out "tokens/$issuer-1.pub"
    fi
done
mkdir -p tls
if [ ! -f tls/ca.key ] || [ ! -f tls/ca.crt ]; then
    openssl ecparam -name prime256v1 -genkey -noout -out tls/ca.key
    openssl req -x509 -new -key tls/ca.key -sha256 -days 3650 -subj "/CN=antifraud internal CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" -out tls/ca.crt
fi
for process in gateway identity risk report warning partners console; do
    mkdir -p "tls/$process"
    if [ ! -f "tls/$process/tls.key" ] || [ ! -f "tls/$process/tls.crt" ]; then
        openssl ecparam -name prime256v1 -genkey -noout -out "tls/$process/tls.key"
        openssl req -new -key "tls/$process/tls.key" -subj "/CN=$process" \
            -out "tls/$process/tls.csr"
        printf 'basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:%s,DNS:%s.antifraud.svc\nextendedKeyUsage=serverAuth,clientAuth\n' \
            "$process" "$process" > "tls/$process/ext.cnf"
        openssl x509 -req -in "tls/$process/tls.csr" -CA tls/ca.crt -CAkey tls/ca.key \
            -CAcreateserial -days 365 -sha256 -extfile "tls/$process/ext.cnf" \
            -out "tls/$process/tls.crt"
        rm "tls/$process/tls.csr" "tls/$process/ext.cnf"
    fi
    cp tls/ca.crt "tls/$process/ca.crt"
done
echo "secrets in $(pwd): postgres.env database.env identity-keys.env report-keys.env warning-keys.env console-keys.env tokens/ tls/"
