#!/usr/bin/env bash
# Build a corpus of REAL OCI images from real Debian bookworm packages, without a
# Docker engine (debootstrap + chroot apt-get + umoci), push them to the local
# registry (tools/corpus/registry.sh, 127.0.0.1:5000) with skopeo, and print a summary.
#
#   tools/corpus/build_corpus.sh            build what is missing, (re)push everything, print summary
#   FORCE=1 tools/corpus/build_corpus.sh    rebuild every image (the debootstrap rootfs cache is kept)
#   FORCE_ROOTFS=1 ...                 also redo debootstrap
#   tools/corpus/build_corpus.sh clean      remove all corpus data (stops the registry first)
#
# Must run as root (debootstrap, chroot, unshare --mount).  Needs network access to
# the Debian archive only.  Everything is written under CORPUS_ROOT:
#   cache/       debootstrap rootfs, apt lists/archives, downloaded .debs
#   build-oci/   one umoci OCI layout holding every image (shared base-layer blob)
#   oci/<name>-<tag>/   one OCI layout per image, single manifest (or one index), ref = <tag>
#   nginx.tar    docker-archive of corpus/nginx:latest
#   expected/    ground truth per image: dpkg package list, ELF path list, image config
#   summary.json per-image stats (also printed as a table)
# (From the team's corpus harness, shared/harness/; owned and documented here: tools/corpus/README.md.)
set -euo pipefail
shopt -s inherit_errexit

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CORPUS_ROOT=${CORPUS_ROOT:-/tmp/portscan-corpus}
REGISTRY=${REGISTRY:-127.0.0.1:5000}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
SUITE=bookworm
FORCE=${FORCE:-0}
FORCE_ROOTFS=${FORCE_ROOTFS:-0}
PUSH=${PUSH:-1}

CACHE=$CORPUS_ROOT/cache
BUILD=$CORPUS_ROOT/build-oci
OCI=$CORPUS_ROOT/oci
WORK=$CORPUS_ROOT/work
EXPECT=$CORPUS_ROOT/expected
ROOTFS=$CACHE/rootfs-$SUITE
LOGS=$CORPUS_ROOT/logs
PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '\n==> %s\n' "$*" >&2; }
die() { echo "build_corpus.sh: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "must run as root"

if [[ ${1:-} == clean ]]; then
  "$HERE/registry.sh" stop || true
  if findmnt -rn -o TARGET | grep -q "^$CORPUS_ROOT/"; then die "something is mounted under $CORPUS_ROOT; not removing"; fi
  rm -rf "$CORPUS_ROOT"
  echo "removed $CORPUS_ROOT"
  exit 0
fi

# ---------------------------------------------------------------- tools
ensure_tools() {
  local missing=() pair cmd pkg
  for pair in debootstrap:debootstrap umoci:umoci skopeo:skopeo docker-registry:docker-registry \
              curl:curl pigz:pigz unshare:util-linux python3:python3 file:file; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    command -v "$cmd" >/dev/null || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# ---------------------------------------------------------------- chroot helper
# chroot_run ROOTFS SCRIPT: run SCRIPT with /bin/sh inside ROOTFS.  /proc, /dev,
# resolv.conf and the apt lists/archives caches are mounted in a private mount
# namespace, so they vanish when the command exits and never reach a layer.
chroot_run() {
  local root=$1 script=$2
  mkdir -p "$CACHE/apt-lists/partial" "$CACHE/apt-cache/archives/partial" \
           "$root/var/lib/apt/lists" "$root/var/cache/apt" "$root/proc" "$root/dev" "$root/etc"
  [[ -e $root/etc/resolv.conf || -L $root/etc/resolv.conf ]] || : > "$root/etc/resolv.conf"
  unshare --mount --propagation private -- /bin/sh -eu -c '
    r=$1; c=$2; s=$3
    mount -t proc proc "$r/proc"
    mount --rbind /dev "$r/dev"
    mount --bind "$c/apt-lists" "$r/var/lib/apt/lists"
    mount --bind "$c/apt-cache" "$r/var/cache/apt"
    if [ -f "$r/etc/resolv.conf" ] && [ ! -L "$r/etc/resolv.conf" ]; then
      mount --bind /etc/resolv.conf "$r/etc/resolv.conf"
    fi
    exec chroot "$r" /usr/bin/env -i '"$PATH_ENV"' HOME=/root LANG=C.UTF-8 \
      DEBIAN_FRONTEND=noninteractive /bin/sh -euc "$s"
  ' sh "$root" "$CACHE" "$script" 2>>"$LOGS/chroot.log" \
    || { tail -15 "$LOGS/chroot.log" >&2; die "chroot step failed: $script"; }
  if findmnt -rn -o TARGET | grep -q "^$root/"; then die "mounts leaked under $root"; fi
}

APT_INSTALL='apt-get update -qq && apt-get install -y -qq --no-install-recommends'

# ---------------------------------------------------------------- base rootfs
build_rootfs() {
  if [[ -f $ROOTFS.done && $FORCE_ROOTFS != 1 ]]; then return 0; fi
  log "debootstrap --variant=minbase $SUITE"
  if findmnt -rn -o TARGET | grep -q "^$ROOTFS/"; then die "something is mounted under $ROOTFS"; fi
  rm -rf "$ROOTFS" "$ROOTFS.done"
  mkdir -p "$CACHE"
  debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" > "$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed"; }
  # make it look like the official debian image: deb822 sources incl. security,
  # no apt lists/caches, no device nodes, generic host files, services never started
  rm -f "$ROOTFS/etc/apt/sources.list"
  cat > "$ROOTFS/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  printf '#!/bin/sh\nexit 101\n' > "$ROOTFS/usr/sbin/policy-rc.d"; chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' > "$ROOTFS/etc/apt/apt.conf.d/docker-no-recommends"
  printf 'Acquire::Languages "none";\n' > "$ROOTFS/etc/apt/apt.conf.d/docker-no-languages"
  : > "$ROOTFS/etc/resolv.conf"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$ROOTFS/etc/hosts"
  : > "$ROOTFS/etc/hostname"
  rm -rf "$ROOTFS/var/lib/apt/lists/"* "$ROOTFS/var/cache/apt/"*
  chroot_run "$ROOTFS" 'apt-get update -qq && apt-get -y -qq upgrade' >> "$LOGS/chroot.log"
  find "$ROOTFS/dev" "$ROOTFS/proc" "$ROOTFS/sys" -mindepth 1 -delete
  rm -rf "$ROOTFS/var/lib/apt/lists/"* "$ROOTFS/var/cache/apt/"* "$ROOTFS/var/log/bootstrap.log" \
         "$ROOTFS/debootstrap" "$ROOTFS/tmp/"* "$ROOTFS/var/cache/ldconfig/aux-cache"
  mkdir -p "$ROOTFS/var/lib/apt/lists/partial"
  touch "$ROOTFS.done"
}

# ---------------------------------------------------------------- .deb fetch (any arch)
# fetch_deb ARCH PKG -> prints the path of the downloaded .deb (private apt state per arch)
fetch_deb() {
  local arch=$1 pkg=$2 d=$CACHE/apt-$1
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/debs"
  [[ -e $d/status ]] || : > "$d/status"
  printf 'deb [arch=%s] %s %s main\ndeb [arch=%s] %s %s-security main\n' \
    "$arch" "$MIRROR" "$SUITE" "$arch" "$SECURITY_MIRROR" "$SUITE" > "$d/sources.list"
  local o=(-qq -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" -o Dir::Etc::SourceList="$d/sources.list"
           -o Dir::Etc::SourceParts=/nonexistent -o Dir::State::status="$d/status"
           -o APT::Architecture="$arch" -o APT::Architectures="$arch" -o APT::Sandbox::User=root)
  if [[ ! -f $d/lists.done ]]; then apt-get "${o[@]}" update >&2; touch "$d/lists.done"; fi
  local ver dd=$d/debs/$pkg f
  ver=$(apt-cache "${o[@]}" show "$pkg" | awk '/^Version:/{print $2; exit}')
  [[ -n $ver ]] || die "$pkg:$arch not found in the $SUITE archive"
  mkdir -p "$dd"
  for f in "$dd"/*.deb; do
    if [[ -s $f && $(dpkg-deb -f "$f" Version) == "$ver" ]]; then echo "$f"; return 0; fi
  done
  rm -f "$dd"/*.deb
  (cd "$dd" && apt-get "${o[@]}" download "$pkg=$ver" >&2)
  for f in "$dd"/*.deb; do [[ -s $f ]] && { echo "$f"; return 0; }; done
  die "download of $pkg:$arch failed"
}

# ---------------------------------------------------------------- umoci helpers
declare -A BUILT=()   # images built during this run (so FORCE=1 builds each once)
have_tag() { [[ -f $BUILD/index.json ]] && umoci ls --layout "$BUILD" | grep -x -- "$1" >/dev/null; }  # no grep -q: SIGPIPE + pipefail
image_done() {
  [[ -n ${BUILT[$1]:-} ]] && return 0
  [[ $FORCE != 1 && -f $OCI/$1/index.json ]] && have_tag "$1"
}
new_tag() { if have_tag "$1"; then umoci rm --image "$BUILD:$1"; fi; umoci new --image "$BUILD:$1"; }

init_build_layout() { [[ -f $BUILD/index.json ]] || umoci init --layout "$BUILD"; }

# export_image BUILDTAG DIRNAME REF: per-image single-manifest layout (for oci-dir consumers)
export_image() {
  rm -rf "${OCI:?}/$2"; mkdir -p "$OCI"
  skopeo copy -q "oci:$BUILD:$1" "oci:$OCI/$2:$3"
}

write_config_expect() {  # DIR: image config as ground truth
  mkdir -p "$EXPECT"
  skopeo inspect --config "oci:$OCI/$1" > "$EXPECT/$1.config.json"
}

build_base() {
  local t=debian-bookworm
  [[ -n ${BUILT[$t]:-} ]] && return 0
  if image_done "$t"; then log "$t: up to date"; BUILT[$t]=1; return 0; fi
  build_rootfs
  init_build_layout
  log "image $t"
  layer_from_dir "$t" "$ROOTFS" "debootstrap --variant=minbase $SUITE (+ apt-get upgrade, apt lists removed)"
  umoci config --image "$BUILD:$t" --config.env "$PATH_ENV" --config.cmd bash \
    --config.label org.opencontainers.image.source=portscan-corpus \
    --history.created_by '/bin/sh -c #(nop)  CMD ["bash"]'
  mkdir -p "$EXPECT"
  chroot_run "$ROOTFS" "dpkg-query -W -f='\${Package}\t\${Version}\t\${Architecture}\n'" > "$EXPECT/$t.dpkg.tsv"
  export_image "$t" "$t" bookworm
  write_config_expect "$t"
  BUILT[$t]=1
}

# build_derived TAG "STEP1" "STEP2" ... -- CONFIG-ARGS...
# Each STEP is a shell script run in the chroot and becomes one layer on top of
# debian-bookworm.  CONFIG-ARGS are passed to `umoci config`.
build_derived() {
  local t=$1 dir=$2 ref=$3; shift 3
  local steps=() cfg=()
  while (($#)); do [[ $1 == -- ]] && { shift; cfg=("$@"); break; }; steps+=("$1"); shift; done
  if image_done "$dir"; then log "$dir: up to date"; return 0; fi
  build_base
  log "image $dir"
  local b=$WORK/bundle-$t
  rm -rf "$b"; mkdir -p "$WORK"
  umoci unpack --image "$BUILD:debian-bookworm" "$b" >/dev/null
  local s
  for s in "${steps[@]}"; do
    echo "### $dir: $s" >> "$LOGS/chroot.log"
    chroot_run "$b/rootfs" "$s" >> "$LOGS/chroot.log"
    umoci repack --refresh-bundle --image "$BUILD:$t" --history.created_by "/bin/sh -c $s" "$b"
  done
  chroot_run "$b/rootfs" "dpkg-query -W -f='\${Package}\t\${Version}\t\${Architecture}\n'" > "$EXPECT/$dir.dpkg.tsv"
  ((${#cfg[@]})) && umoci config --image "$BUILD:$t" "${cfg[@]}" \
    --history.created_by "/bin/sh -c #(nop) config ${cfg[*]}"
  rm -rf "$b"
  export_image "$t" "$dir" "$ref"
  write_config_expect "$dir"
  BUILT[$dir]=1
}

# layer_from_dir TAG SRCDIR CREATED_BY: new image TAG, FROM scratch, one layer = SRCDIR.
# (umoci new + unpack + copy + repack; `umoci insert` is avoided on purpose:
# umoci <= 0.4.7 does not close the tar writer there, so its layers lack the
# tar footer / last padding and GNU tar and Python tarfile reject them,
# umoci issue #436, fixed by PR #534.)
layer_from_dir() {
  local t=$1 src=$2 by=$3 b=$WORK/bundle-$1
  init_build_layout
  new_tag "$t"
  rm -rf "$b"; mkdir -p "$WORK"
  umoci unpack --image "$BUILD:$t" "$b" >/dev/null
  cp -a "$src/." "$b/rootfs/"
  umoci repack --image "$BUILD:$t" --history.created_by "$by" "$b"
  rm -rf "$b"
}

# build_scratch TAG ARCH ROOTDIR CONFIG-ARGS...: single layer, FROM scratch
build_scratch_layer() {
  local t=$1 arch=$2 src=$3; shift 3
  layer_from_dir "$t" "$src" "COPY rootfs / (files from Debian .debs)"
  umoci config --image "$BUILD:$t" --architecture "$arch" --os linux "$@" \
    --history.created_by "/bin/sh -c #(nop) config $*"
}

busybox_tree() {  # ARCH -> prints a dir with /bin/busybox + applet symlinks
  local arch=$1 deb x
  deb=$(fetch_deb "$arch" busybox-static)
  x=$WORK/busybox-$arch
  rm -rf "$x" "$x.deb"; mkdir -p "$x.deb" "$x/bin"
  dpkg-deb -x "$deb" "$x.deb"
  cp -a "$x.deb/bin/busybox" "$x/bin/busybox"
  mkdir -p "$x/usr/share/doc/busybox-static"
  cp -a "$x.deb/usr/share/doc/busybox-static/copyright" "$x/usr/share/doc/busybox-static/" 2>/dev/null || true
  # applet list from the amd64 build (same source version for every arch)
  local lst=$CACHE/busybox-applets.txt
  if [[ ! -s $lst ]]; then
    local host; host=$(fetch_deb amd64 busybox-static)
    mkdir -p "$WORK/bb-host"; dpkg-deb -x "$host" "$WORK/bb-host"
    "$WORK/bb-host/bin/busybox" --list | grep -vx busybox > "$lst"
    rm -rf "$WORK/bb-host"
  fi
  local a
  while read -r a; do ln -sf busybox "$x/bin/$a"; done < "$lst"
  mkdir -p "$x/tmp" "$x/etc" "$x/root" "$x/var" "$x/dev" "$x/proc" "$x/sys"
  chmod 1777 "$x/tmp"
  rm -rf "$x.deb"
  echo "$x"
}

build_busybox() {
  if ! image_done busybox-static; then
    log "image busybox-static (scratch, amd64)"
    local x; x=$(busybox_tree amd64)
    build_scratch_layer busybox-static amd64 "$x" --config.cmd sh --config.env "$PATH_ENV"
    export_image busybox-static busybox-static static
    write_config_expect busybox-static
    rm -rf "$x"
  else log "busybox-static: up to date"; fi
  if [[ $FORCE == 1 || ! -f $OCI/busybox-multiarch/index.json ]] || ! have_tag busybox-static-arm64; then
    log "image busybox-multiarch (OCI index: linux/amd64 + linux/arm64)"
    local y; y=$(busybox_tree arm64)
    build_scratch_layer busybox-static-arm64 arm64 "$y" --config.cmd sh --config.env "$PATH_ENV" \
      --config.label "org.opencontainers.image.source=portscan-corpus"
    rm -rf "$y"
    python3 "$HERE/ocitool.py" index --layout "$BUILD" --tags busybox-static,busybox-static-arm64 \
      --out "$OCI/busybox-multiarch" --ref multiarch
  else log "busybox-multiarch: up to date"; fi
}

build_gojq() {
  if image_done gojq-latest; then log "gojq-latest: up to date"; return 0; fi
  log "image gojq-latest (scratch, static Go binary from Debian gojq)"
  local deb x=$WORK/gojq
  deb=$(fetch_deb amd64 gojq)
  rm -rf "$x" "$x.deb"; mkdir -p "$x/usr/bin" "$x/usr/share/doc/gojq" "$x.deb"
  dpkg-deb -x "$deb" "$x.deb"
  cp -a "$x.deb/usr/bin/gojq" "$x/usr/bin/"
  cp -a "$x.deb/usr/share/doc/gojq/copyright" "$x/usr/share/doc/gojq/" 2>/dev/null || true
  rm -rf "$x.deb"
  build_scratch_layer gojq-latest amd64 "$x" --config.entrypoint /usr/bin/gojq
  export_image gojq-latest gojq-latest latest
  write_config_expect gojq-latest
  rm -rf "$x"
}

# ---------------------------------------------------------------- the corpus
# Later layers also delete things from earlier ones (whiteouts), as real Dockerfiles do:
# nginx removes a config symlink, redis deletes an ELF binary (/usr/bin/redis-benchmark),
# python deletes every __pycache__ directory of the stdlib.
NODE_APP='mkdir -p /app && cat > /app/package.json <<"EOF"
{"name":"corpus-hello","version":"1.0.0","main":"server.js","license":"MIT","dependencies":{}}
EOF
cat > /app/server.js <<"EOF"
const http = require("http");
http.createServer((req, res) => res.end("hello\n")).listen(process.env.PORT || 3000);
EOF'

build_all() {
  ensure_tools
  mkdir -p "$CORPUS_ROOT" "$CACHE" "$WORK" "$EXPECT" "$OCI" "$LOGS"
  build_base
  build_derived nginx-latest nginx-latest latest \
    "$APT_INSTALL nginx" \
    'ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log && rm /etc/nginx/sites-enabled/default' \
    -- --clear=config.cmd --config.entrypoint nginx --config.entrypoint -g --config.entrypoint 'daemon off;' \
       --config.exposedports 80/tcp --config.stopsignal SIGQUIT
  build_derived redis-latest redis-latest latest \
    "$APT_INSTALL redis-server" \
    'mkdir -p /data && chown redis:redis /data && rm /usr/bin/redis-benchmark' \
    -- --config.cmd redis-server --config.exposedports 6379/tcp --config.workingdir /data --config.volume /data
  build_derived postgres-15 postgres-15 15 \
    "$APT_INSTALL postgresql-common && sed -ri 's/#(create_main_cluster) .*\$/\\1 = false/' /etc/postgresql-common/createcluster.conf" \
    "$APT_INSTALL postgresql-15" \
    'mkdir -p /var/run/postgresql /var/lib/postgresql/data && chown -R postgres:postgres /var/run/postgresql /var/lib/postgresql && chmod 2777 /var/run/postgresql' \
    -- --config.env "PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
       --config.env PGDATA=/var/lib/postgresql/data --config.cmd postgres --config.exposedports 5432/tcp \
       --config.stopsignal SIGINT --config.user postgres --config.volume /var/lib/postgresql/data
  build_derived python-3.11 python-3.11 3.11 \
    "$APT_INSTALL python3" \
    'find /usr/lib/python3* -depth -name __pycache__ -type d -exec rm -rf {} +' \
    -- --config.cmd python3 --config.env LANG=C.UTF-8
  build_derived sqlite-latest sqlite-latest latest \
    "$APT_INSTALL sqlite3" \
    -- --clear=config.cmd --config.entrypoint sqlite3
  build_derived jq-latest jq-latest latest \
    "$APT_INSTALL jq" \
    -- --clear=config.cmd --config.entrypoint jq
  build_derived node-18 node-18 18 \
    "$APT_INSTALL nodejs" \
    "$NODE_APP" \
    -- --config.cmd node --config.cmd /app/server.js --config.workingdir /app --config.exposedports 3000/tcp \
       --config.env NODE_ENV=production
  build_busybox
  build_gojq
  umoci gc --layout "$BUILD"
  rm -rf "$WORK"
}

# ---------------------------------------------------------------- push + artifacts
push_all() {
  "$HERE/registry.sh" start
  local d repo ref
  for d in "$OCI"/*/; do
    d=${d%/}; d=${d##*/}
    repo=${d%-*}; ref=${d##*-}
    # busybox-static -> corpus/busybox:static, postgres-15 -> corpus/postgres:15, debian-bookworm -> corpus/debian:bookworm
    log "push corpus/$repo:$ref"
    skopeo copy -q --all --dest-tls-verify=false "oci:$OCI/$d:$ref" "docker://$REGISTRY/corpus/$repo:$ref"
  done
  # the same nginx image once more as a Docker v2 schema 2 manifest (most registries serve those)
  skopeo copy -q --dest-tls-verify=false --format v2s2 "oci:$OCI/nginx-latest:latest" "docker://$REGISTRY/corpus/nginx:v2s2"
  rm -f "$CORPUS_ROOT/nginx.tar"
  skopeo copy -q "oci:$OCI/nginx-latest:latest" "docker-archive:$CORPUS_ROOT/nginx.tar:corpus/nginx:latest"
  log "registry catalog"
  curl -fsS "http://$REGISTRY/v2/_catalog"; echo
}

summary() {
  python3 "$HERE/ocitool.py" stats --json "$CORPUS_ROOT/summary.json" --lists "$EXPECT" "$OCI"/*/
  echo "docker-archive: $CORPUS_ROOT/nginx.tar ($(du -h "$CORPUS_ROOT/nginx.tar" 2>/dev/null | cut -f1))"
}

build_all
[[ $PUSH == 1 ]] && push_all
summary
