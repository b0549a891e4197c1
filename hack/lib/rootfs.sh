# shellcheck shell=bash
# What every locally built image's root filesystem starts with: the node
# environment's images (hack/node-env.sh) and the conformance test images
# (hack/lib/conformance-images.sh). Source it; it only defines functions.

# write_etc ROOTFS: root and nobody in /etc/passwd and /etc/group, a writable
# /tmp, and the files the runtime bind-mounts over (hosts, resolv.conf, hostname).
write_etc() {
    local rootfs=$1
    mkdir -p "$rootfs/etc" "$rootfs/tmp" "$rootfs/root" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev"
    chmod 1777 "$rootfs/tmp"
    chmod 0700 "$rootfs/root"
    cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
    cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
EOF
    # Filled in by the runtime at container start; present so bind mounts land.
    : >"$rootfs/etc/hosts"
    : >"$rootfs/etc/resolv.conf"
    : >"$rootfs/etc/hostname"
}

# oci_image_build WORK TAG POPULATE [umoci config args...]: an OCI layout in
# WORK/oci holding one image tagged TAG: an empty rootfs filled by the function
# POPULATE ROOTFS, the platform's os/architecture, author knode, the usual PATH,
# working dir /, then the extra `umoci config` arguments (entrypoint, cmd, user).
oci_image_build() {
    local work=$1 tag=$2 populate=$3
    shift 3
    umoci init --layout "$work/oci"
    umoci new --image "$work/oci:$tag"
    umoci unpack --image "$work/oci:$tag" "$work/bundle" >/dev/null
    "$populate" "$work/bundle/rootfs"
    umoci repack --image "$work/oci:$tag" "$work/bundle"
    umoci config --image "$work/oci:$tag" \
        --os linux --architecture "$(dpkg --print-architecture)" --author knode \
        --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --config.workingdir / "$@"
    umoci gc --layout "$work/oci"
}
