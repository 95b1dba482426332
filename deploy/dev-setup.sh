#!/bin/sh
# Everything the development cluster in deploy/compose.yaml needs that must never be committed:
# passwords, key passphrases, the partners' keys, two registry roots, the signed registry and
# the signed accords. It runs the same ceremonies as deploy/README.md, on one machine, so it is
# for development only: in production every partner and root holder runs its own part.
#
#   deploy/dev-setup.sh            (needs `broker` and `openssl` on PATH; idempotent)
#
# Output, all under deploy/dev/ (git ignores it):
#   secrets/   admin-password, kafka-password-<user>, key-passphrase-<name>   (mode 0600)
#   keys/<p>/  each partner's encrypted keys and card; signing.pem and encryption.pem link to
#              the current ones, so configuration files need no key ids
#   keys/gateway/  the gateway's decision-signing key (signing.pem links to it)
#   roots/     two root keys (threshold 2): in production two different holders
#   registry/  registry.json (signed by both roots) and trusted-roots.json (the copy first
#              trusted, compared with the root holders out of band)
#   accords/   the accords from policies/ and their co-signatures (<accord>.yaml.sigs.json)
#
# Files are created mode 0600. The broker image runs as uid 10001 and the apache/kafka image
# as uid 1000: on a Linux host, hand the files to them (see deploy/README.md, "Compose").
set -eu
umask 077

here=$(cd "$(dirname "$0")" && pwd)
dev="$here/dev"
partners="GB RS MK XK TR AL"
expires=${REGISTRY_EXPIRES:-$(date -u -d '+180 days' +%Y-%m-%dT00:00:00Z)}
# Every partner's keys use this suite. Each accord in policies/ names the suite its flows use;
# the parties to a pq-hybrid accord (gb-rs from its second version) also get pq-hybrid keys
# of their own, beside these: the registry lists both and each accord's suite picks.
suite=${SUITE:-classic}
hybrid_partners="GB RS"

mkdir -p "$dev/secrets" "$dev/keys" "$dev/roots" "$dev/registry" "$dev/accords"

secret() {  # secret NAME: 32 random bytes, base64, unless the file exists
    [ -e "$dev/secrets/$1" ] || openssl rand -base64 32 | tr -d '\n' > "$dev/secrets/$1"
}

secret admin-password
secret kafka-password-gateway
secret kafka-password-auditor
secret kafka-password-witness
secret key-passphrase-gateway
secret key-passphrase-witness
secret key-passphrase-roots
for p in $partners; do
    lower=$(echo "$p" | tr 'A-Z' 'a-z')
    secret "kafka-password-adapter-$lower"
    secret "key-passphrase-$lower"
done

link_current() {  # link_current DIR ROLE: DIR/<role>.pem -> the newest *-<role>-*.pem
    newest=$(cd "$1" && ls -t -- *-"$2"-*.pem 2>/dev/null | head -n 1)
    [ -n "$newest" ] && ln -sfn "$newest" "$1/$2.pem"
}

# 1. Key generation: each partner, the gateway, a witness and the root holders.
for p in $partners; do
    lower=$(echo "$p" | tr 'A-Z' 'a-z')
    dir="$dev/keys/$lower"
    if [ ! -e "$dir/$p.card.json" ]; then
        mkdir -p "$dir"
        broker keys generate --partner "$p" --out "$dir" --suite "$suite" \
            --passphrase-file "$dev/secrets/key-passphrase-$lower"
    fi
    link_current "$dir" signing
    link_current "$dir" encryption
done
for p in $hybrid_partners; do
    lower=$(echo "$p" | tr 'A-Z' 'a-z')
    dir="$dev/keys/$lower-pq-hybrid"
    if [ ! -e "$dir/$p.card.json" ]; then
        mkdir -p "$dir"
        broker keys generate --partner "$p" --out "$dir" --suite pq-hybrid \
            --passphrase-file "$dev/secrets/key-passphrase-$lower"
    fi
    link_current "$dir" signing
    link_current "$dir" encryption
done
if [ ! -e "$dev/keys/gateway/signing.pem" ]; then
    mkdir -p "$dev/keys/gateway"
    broker keys generate-root --kind gateway --name gateway-1 --out "$dev/keys/gateway" \
        --passphrase-file "$dev/secrets/key-passphrase-gateway"
    ln -sfn "$(cd "$dev/keys/gateway" && ls -- gateway-*.pem | head -n 1)" \
        "$dev/keys/gateway/signing.pem"
fi
# The witness signs its cosignatures under its registered name, a C2SP note key name.
if [ ! -e "$dev/keys/witness/signing.pem" ]; then
    mkdir -p "$dev/keys/witness"
    broker keys generate-root --kind witness --name witness-rs --out "$dev/keys/witness" \
        --passphrase-file "$dev/secrets/key-passphrase-witness"
    ln -sfn "$(cd "$dev/keys/witness" && ls -- witness-*.pem | grep -v card | head -n 1)" \
        "$dev/keys/witness/signing.pem"
fi
for root in root-gb root-rs; do
    if [ ! -e "$dev/roots/$root" ]; then
        mkdir -p "$dev/roots/$root"
        broker keys generate-root --name "$root" --out "$dev/roots/$root" \
            --passphrase-file "$dev/secrets/key-passphrase-roots"
    fi
done

# 2. The registry: built once, then each root holder signs in turn.
registry="$dev/registry/registry.json"
if [ ! -e "$registry" ]; then
    set --
    for root in root-gb root-rs; do
        set -- "$@" --root-card "$(ls "$dev/roots/$root"/root-*.card.json)"
    done
    broker registry init --out "$registry" "$@" --threshold 2 --expires "$expires"
    for p in $partners; do
        lower=$(echo "$p" | tr 'A-Z' 'a-z')
        broker registry add-partner "$registry" "$dev/keys/$lower/$p.card.json"
    done
    for p in $hybrid_partners; do  # merged key by key: each keeps its own suite
        lower=$(echo "$p" | tr 'A-Z' 'a-z')
        broker registry add-partner "$registry" "$dev/keys/$lower-pq-hybrid/$p.card.json"
    done
    broker registry add-key "$registry" "$(ls "$dev/keys/gateway"/gateway-*.card.json)"
    broker registry add-key "$registry" "$(ls "$dev/keys/witness"/witness-*.card.json)"
    for root in root-gb root-rs; do
        key=$(ls "$dev/roots/$root"/root-*.pem | grep -v card)
        broker registry sign "$registry" --key "$key" \
            --passphrase-file "$dev/secrets/key-passphrase-roots"
    done
    broker registry verify "$registry"
    cp "$registry" "$dev/registry/trusted-roots.json"
fi

# 3. The accords: every party co-signs each one (signatures go to <accord>.yaml.sigs.json).
for accord in "$here"/../policies/*.yaml; do
    name=$(basename "$accord")
    [ -e "$dev/accords/$name.sigs.json" ] && continue
    cp "$accord" "$dev/accords/$name"
    for p in $(basename "$name" .yaml | sed 's/[.]v[0-9]*$//' | tr 'a-z-' 'A-Z '); do
        lower=$(echo "$p" | tr 'A-Z' 'a-z')
        broker policy sign "$dev/accords/$name" --partner "$p" --registry "$registry" \
            --key "$(ls "$dev/keys/$lower"/"$p"-policy-*.pem)" \
            --passphrase-file "$dev/secrets/key-passphrase-$lower"
    done
    broker policy verify "$dev/accords/$name" --registry "$registry"
done
echo "development material is in $dev"
