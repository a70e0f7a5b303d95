# Installs the Debian 12 packages kpsa builds and tests with, when missing.
# shellcheck shell=bash

KPSA_PACKAGES="gcc clang meson ninja-build pkg-config libssl-dev openssl
libp11-kit-dev p11-kit p11-kit-modules softhsm2 opensc gnutls-bin valgrind
xxd python3 clang-format libclang-rt-14-dev"

install_deps() {
    local missing=() pkg sudo=
    for pkg in $KPSA_PACKAGES; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null |
            grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    echo "installing: ${missing[*]}"
    $sudo apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
            --no-install-recommends "${missing[@]}" >/dev/null
}
