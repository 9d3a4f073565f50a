#!/bin/sh
# Writes the dev overlay's Secrets (git-ignored) with fresh random values:
#   postgres.env        the in-cluster PostgreSQL's password
#   database.env        ANTIFRAUD_DATABASE_URL pointing at it
#   identity-keys.env   identity's data key and index key
#   tokens/             each process's Ed25519 token signing key and its public key
# Existing files are kept (identity data stays readable); delete them to start over.
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
if [ ! -f identity-keys.env ]; then
    {
        printf 'ANTIFRAUD_IDENTITY_DATA_KEYS=k1:%s\n' "$(random_b64)"
        printf 'ANTIFRAUD_IDENTITY_INDEX_KEY=%s\n' "$(random_b64)"
    } > identity-keys.env
fi
mkdir -p tokens
for issuer in gateway identity risk report warning; do
    if [ ! -f "tokens/$issuer-1.key" ]; then
        openssl genpkey -algorithm ed25519 -out "tokens/$issuer-1.key"
        openssl pkey -in "tokens/$issuer-1.key" -pubout -out "tokens/$issuer-1.pub"
    fi
done
echo "secrets in $(pwd): postgres.env database.env identity-keys.env tokens/"
