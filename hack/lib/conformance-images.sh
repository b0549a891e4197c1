# shellcheck shell=bash
# Root filesystems of the local stand-ins for upstream's e2e test images
# (test/images in k8s.io/kubernetes), for hack/build-test-images.sh. Each
# populate_* function fills a rootfs directory; the image table in
# hack/build-test-images.sh says which one builds which image. Source it after
# conformance-common.sh; it has no side effects.
#
# What the specs need from each image (checked against the 1.37 specs):
#   agnhost    /agnhost (built from the module) and its agnhost-2 link, busybox,
#              bash, curl and netcat-openbsd (Debian's, with their libraries:
#              probe specs run /bin/bash -c, networking specs nc -u -w 1), /uploads, porter's certificates, user 1000 and
#              group 50000 "defined in image"
#   busybox    busybox applets in /bin and where busybox reports them, knode-sh as /bin/sh,
#              and nmeter (Debian's busybox lacks it; the container-lifecycle specs
#              take millisecond timestamps from `nmeter -d0 '%3t'`): every image
#              built on populate_base gets knode-nmeter (below) as /bin/nmeter
#   nginx      a process named nginx that writes /var/run/nginx.pid and serves
#              HTTP on port 80 (busybox httpd underneath)
#   nonroot    busybox, default user 1234
#   nonewprivs /usr/local/bin/nnp (setuid root; prints the effective uid)
#   ipc-utils  ipcs (util-linux) and a shell
#   glibc-dns-testing  a glibc `hostname` (hostname -f through NSS) and a shell
#   pause      catatonit as /pause

# populate_base ROOTFS: /etc files, a writable /tmp, busybox and every applet.
populate_base() {
    local rootfs=$1 applet
    write_etc "$rootfs"
    mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,var/run,home}
    printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
    install -m 0755 /bin/busybox "$rootfs/bin/busybox"
    # Every applet in /bin, as in upstream's busybox image (specs run /bin/sysctl),
    # and at the path Debian's busybox reports (sbin/sysctl, usr/bin/wget, ...).
    while read -r applet; do
        [[ -n $applet && $applet != bin/busybox && $applet != linuxrc ]] || continue
        mkdir -p "$rootfs/$(dirname "$applet")"
        ln -sf /bin/busybox "$rootfs/$applet"
        [[ -e $rootfs/bin/${applet##*/} ]] || ln -s busybox "$rootfs/bin/${applet##*/}"
    done < <(/bin/busybox --list-full)
    install -m 0755 "$KNODE_TEST_IMAGES_DIR/bin/nmeter" "$rootfs/bin/nmeter"
    # /bin/sh is knode-sh (below): busybox's ash, as in upstream's image (specs
    # compare its messages, "/bin/sh: can't create /file: Read-only file
    # system"), but bash when the environment holds a variable whose name is not
    # an identifier: Debian's busybox 1.35 ash drops those (data-1=value-1 from
    # envFrom), which upstream's busybox 1.37 passes on to `env`.
    copy_dynamic /bin/bash "$rootfs" /bin/bash
    install -m 0755 "$KNODE_TEST_IMAGES_DIR/bin/knode-sh" "$rootfs/bin/sh"
}

# write_knode_sh_source DIR: /bin/sh of the busybox-based images (see
# populate_base): execs busybox as `sh` (ash), or bash when an environment
# variable's name is not a shell identifier; argv is passed on unchanged.
write_knode_sh_source() {
    mkdir -p "$1"
    cat >"$1/main.go" <<'GO'
// knode-sh runs busybox's ash, or bash for environments ash 1.35 would lose.
package main

import (
	"os"
	"strings"
	"syscall"
)

func identifier(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func main() {
	shell := "/bin/busybox"
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !identifier(name) {
			shell = "/bin/bash"
			break
		}
	}
	args := append([]string{}, os.Args...)
	if shell == "/bin/busybox" {
		// busybox picks the applet by argv[0]'s base name: keep "/bin/sh" (messages
		// say "/bin/sh: ...") unless it was called by another name.
		if !strings.HasSuffix(args[0], "sh") {
			args[0] = "sh"
		}
	}
	err := syscall.Exec(shell, args, os.Environ())
	os.Stderr.WriteString("knode-sh: exec " + shell + ": " + err.Error() + "\n")
	os.Exit(127)
}
GO
}

# write_nmeter_source DIR: a stand-in for busybox's nmeter applet, limited to
# what the specs use: `nmeter [-d MSEC] FORMAT` with %[N]t (time of day with N
# decimals) and %%, one line per interval, until stdout closes.
write_nmeter_source() {
    mkdir -p "$1"
    cat >"$1/main.go" <<'GO'
// nmeter prints the time of day, as busybox's nmeter does for `nmeter -d0 '%3t'`
// (the only use the e2e specs make of it), one line per interval.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func expand(format string, now time.Time) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 == len(format) {
			b.WriteByte(format[i])
			continue
		}
		j := i + 1
		digits := 0
		for j < len(format) && format[j] >= '0' && format[j] <= '9' {
			digits = digits*10 + int(format[j]-'0')
			j++
		}
		switch {
		case j < len(format) && format[j] == 't':
			b.WriteString(now.Format("15:04:05"))
			if digits > 0 {
				frac := fmt.Sprintf("%09d", now.Nanosecond())
				if digits > 9 {
					digits = 9
				}
				b.WriteString("." + frac[:digits])
			}
			i = j
		case j < len(format) && format[j] == '%':
			b.WriteByte('%')
			i = j
		default:
			b.WriteByte('%')
		}
	}
	return b.String()
}

// main takes busybox's syntax: -d MSEC or -dMSEC, then the format.
func main() {
	delay, format, args := 1000, "", os.Args[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-d" && i+1 < len(args):
			i++
			a = "-d" + args[i]
			fallthrough
		case strings.HasPrefix(a, "-d"):
			n, err := strconv.Atoi(a[2:])
			if err != nil {
				fmt.Fprintf(os.Stderr, "nmeter: bad delay %q\n", a[2:])
				os.Exit(1)
			}
			delay = n
		default:
			format = a
		}
	}
	if format == "" {
		fmt.Fprintln(os.Stderr, "usage: nmeter [-d MSEC] FORMAT")
		os.Exit(1)
	}
	for {
		if _, err := fmt.Println(expand(format, time.Now())); err != nil {
			os.Exit(0)
		}
		time.Sleep(time.Duration(delay) * time.Millisecond)
	}
}
GO
}

# copy_dynamic BIN ROOTFS DEST: a dynamically linked Debian binary and the
# libraries it loads (plus the loader), at the same paths inside ROOTFS.
copy_dynamic() {
    local bin=$1 rootfs=$2 dest=$3 lib
    mkdir -p "$rootfs$(dirname "$dest")"
    rm -f "$rootfs$dest"
    install -m 0755 "$bin" "$rootfs$dest"
    for lib in $(ldd "$bin" 2>/dev/null | grep -oE '/[^ ]+' || true); do
        mkdir -p "$rootfs$(dirname "$lib")"
        cp -L "$lib" "$rootfs$lib"
    done
}

populate_busybox() { populate_base "$1"; }

populate_nonroot() { populate_base "$1"; }

populate_agnhost() {
    local rootfs=$1 src
    src="$(conformance_k8s_src)/test/images/agnhost"
    populate_base "$rootfs"
    copy_dynamic /usr/bin/curl "$rootfs" /usr/bin/curl
    # netcat-openbsd, as upstream's image has: busybox's `nc -u -w 1` does not
    # wait for the UDP answer the networking specs read.
    copy_dynamic "$(readlink -f /bin/nc.openbsd)" "$rootfs" /usr/bin/nc
    ln -sf /usr/bin/nc "$rootfs/bin/nc"
    # /bin/sh is bash here: Debian's busybox ash runs its own applets before
    # PATH (FEATURE_PREFER_APPLETS), so `sh -c 'nc -v ...'` would get busybox's
    # nc, which has no -v; upstream's agnhost (Alpine) shell finds the real nc.
    ln -sf bash "$rootfs/bin/sh"
    install -m 0755 "$KNODE_TEST_IMAGES_DIR/bin/agnhost" "$rootfs/agnhost"
    ln -s agnhost "$rootfs/agnhost-2"
    mkdir -p "$rootfs/uploads"
    install -m 0644 "$src/porter/localhost.crt" "$rootfs/localhost.crt"
    install -m 0600 "$src/porter/localhost.key" "$rootfs/localhost.key"
    # As upstream's `adduser -u 1000 user-defined-in-image` and
    # `addgroup -g 50000 group-defined-in-image` (SupplementalGroups specs).
    echo 'user-defined-in-image:x:1000:1000:Linux User,,,:/home/user-defined-in-image:/bin/sh' >>"$rootfs/etc/passwd"
    echo 'user-defined-in-image:x:1000:' >>"$rootfs/etc/group"
    echo 'group-defined-in-image:x:50000:user-defined-in-image' >>"$rootfs/etc/group"
    mkdir -p "$rootfs/home/user-defined-in-image"
    chown 1000:1000 "$rootfs/home/user-defined-in-image"
}

# nginx: the specs only need a long-running root process named nginx, its pid
# in /var/run/nginx.pid and something answering HTTP on port 80. The script
# itself is that process (a script's task name is the script's file name).
populate_nginx() {
    local rootfs=$1
    populate_base "$rootfs"
    mkdir -p "$rootfs/usr/share/nginx/html" "$rootfs/var/log/nginx"
    echo '<h1>Welcome to nginx!</h1>' >"$rootfs/usr/share/nginx/html/index.html"
    rm -f "$rootfs/usr/sbin/nginx"
    cat >"$rootfs/usr/sbin/nginx" <<'EOF'
#!/bin/sh
# knode's stand-in for nginx: busybox httpd on port 80 under a process named nginx.
echo $$ >/var/run/nginx.pid
httpd -f -p 80 -h /usr/share/nginx/html &
child=$!
trap 'kill -TERM $child 2>/dev/null; wait $child; exit 0' TERM INT QUIT
wait $child
EOF
    chmod 0755 "$rootfs/usr/sbin/nginx"
}

populate_nonewprivs() {
    local rootfs=$1
    populate_base "$rootfs"
    mkdir -p "$rootfs/usr/local/bin"
    install -m 4755 "$KNODE_TEST_IMAGES_DIR/bin/nnp" "$rootfs/usr/local/bin/nnp"
}

populate_ipc_utils() {
    local rootfs=$1
    populate_base "$rootfs"
    copy_dynamic /usr/bin/ipcs "$rootfs" /usr/bin/ipcs
    copy_dynamic /usr/bin/ipcmk "$rootfs" /usr/bin/ipcmk
}

populate_glibc_dns() {
    local rootfs=$1
    populate_base "$rootfs"
    copy_dynamic /bin/hostname "$rootfs" /bin/hostname
}

populate_pause() {
    local rootfs=$1
    mkdir -p "$rootfs"/{etc,proc,sys,dev}
    printf 'root:x:0:0:root:/:/pause\nnobody:x:65535:65535:nobody:/:/pause\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnobody:x:65535:\n' >"$rootfs/etc/group"
    install -m 0755 /usr/bin/catatonit "$rootfs/pause"
}
