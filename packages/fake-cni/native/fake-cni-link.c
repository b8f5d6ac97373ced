/*
 * fake-cni-link: the kernel side of fake-cni's veth mode, over rtnetlink (libmnl), with no
 * process spawned per call. The Node plugin (src/plugin/link.ts) keeps one of these per thread
 * and talks to it a line at a time; a human or a test can also pass one request as arguments.
 *
 *   fake-cni-link                      read requests from stdin, one per line, answer each on stdout
 *   fake-cni-link add NETNS IFNAME ... one request from argv (fields as below); exit 0 on "ok"
 *
 * A request is one line of TAB-separated fields (no field holds a TAB or newline):
 *   add   NETNS IFNAME HOSTIF MTU CONTAINER_MAC HOST_MAC ADDRS ROUTES
 *         Creates the veth pair HOSTIF (up, in this process's netns) <-> IFNAME (in the netns
 *         file NETNS), both with MTU (bytes) and their MACs; then, inside NETNS, adds ADDRS to
 *         IFNAME (comma-separated "addr/prefix", IPv6 with IFA_F_NODAD), sets IFNAME up and adds
 *         ROUTES (comma-separated "dst/prefix" or "dst/prefix@gateway", table main). On any
 *         failure after the pair exists, the pair is deleted again. ("-" = empty list.)
 *         What `ip link add HOSTIF type veth peer name IFNAME netns NETNS` plus `ip addr add`,
 *         `ip link set up`, `ip route add` inside the netns do (the reference ptp plugin's steps).
 *   del   HOSTIF          RTM_DELLINK of HOSTIF (its peer goes with it). A missing link is fine.
 *   addrs NETNS IFNAME    the addresses of IFNAME inside NETNS (RTM_GETADDR dump).
 *
 * Lines are read with getline(3); a request over MAX_REQUEST bytes is refused (EINVAL). When the
 * helper cannot start (no netlink here), it answers every request with that error until EOF.
 *
 * An answer is one line:
 *   ok                    (del of a missing link: "ok\tmissing"; addrs: "ok\tADDR/PREFIX,...")
 *   err\tERRNO_NAME\tSTEP: strerror    e.g. "err\tEOPNOTSUPP\tRTM_NEWLINK veth fc1234: Operation not supported"
 *
 * Single-threaded on purpose: setns(CLONE_NEWNET) moves the whole process into the container's
 * netns for the address/route steps, then back to the netns it started in.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_FIELDS 10
#define MAX_REQUEST (1 << 20) /* longest request line, bytes */
#define MAX_ANSWER 65536      /* longest answer line, bytes */
#define NLBUF 16384 /* one netlink message out, or one read of a dump in */

static int host_ns = -1; /* the netns this process started in */

/* The answer being built for the current request. */
static char answer[MAX_ANSWER];

static const char *errno_name(int e) {
  switch (e) {
  case EPERM: return "EPERM";
  case ENOENT: return "ENOENT";
  case EINTR: return "EINTR";
  case EIO: return "EIO";
  case EBADF: return "EBADF";
  case EAGAIN: return "EAGAIN";
  case ENOMEM: return "ENOMEM";
  case EACCES: return "EACCES";
  case EBUSY: return "EBUSY";
  case EEXIST: return "EEXIST";
  case ENODEV: return "ENODEV";
  case EINVAL: return "EINVAL";
  case ENOSPC: return "ENOSPC";
  case ERANGE: return "ERANGE";
  case ENOSYS: return "ENOSYS";
  case ELOOP: return "ELOOP";
  case ENOTDIR: return "ENOTDIR";
  case ENAMETOOLONG: return "ENAMETOOLONG";
  case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
  case EOPNOTSUPP: return "EOPNOTSUPP";
  case EAFNOSUPPORT: return "EAFNOSUPPORT";
  case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
  case ENETUNREACH: return "ENETUNREACH";
  case ENOBUFS: return "ENOBUFS";
  case ETIMEDOUT: return "ETIMEDOUT";
  default: return "EUNKNOWN";
  }
}

/* Sets the answer to an error from errno value `e` and returns -1. */
static int fail(int e, const char *fmt, ...) {
  char step[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(step, sizeof step, fmt, ap);
  va_end(ap);
  snprintf(answer, sizeof answer, "err\t%s\t%s: %s", errno_name(e), step, strerror(e));
  return -1;
}

/* ---- one netlink socket, in the netns current when it was opened ---- */

struct nl {
  struct mnl_socket *sock;
  unsigned portid;
  unsigned seq;
};

static int nl_open(struct nl *nl) {
  nl->sock = mnl_socket_open(NETLINK_ROUTE);
  if (!nl->sock) return -errno;
  if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
    int e = errno;
    mnl_socket_close(nl->sock);
    nl->sock = NULL;
    return -e;
  }
  nl->portid = mnl_socket_get_portid(nl->sock);
  nl->seq = (unsigned)time(NULL);
  return 0;
}

static void nl_close(struct nl *nl) {
  if (nl->sock) mnl_socket_close(nl->sock);
  nl->sock = NULL;
}

/* Sends `nlh` (NLM_F_ACK or a dump) and reads until the ack/done; `cb` sees each data message.
 * Returns 0 or -errno (the kernel's NLMSG_ERROR code, or a socket error). */
static int nl_talk(struct nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data) {
  char buf[NLBUF];
  nlh->nlmsg_seq = ++nl->seq;
  if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0) return -errno;
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl->sock, buf, sizeof buf);
    if (n < 0) return -errno;
    int r = mnl_cb_run(buf, (size_t)n, nl->seq, nl->portid, cb, data);
    if (r == MNL_CB_STOP) return 0;
    if (r < 0) return -errno;
  }
}

/* A zeroed message buffer (NLBUF bytes: attribute padding must not leak stack bytes to the
 * kernel) with a request header of `type` and NLM_F_REQUEST | `flags`. */
static struct nlmsghdr *msg_start(char *buf, uint16_t type, uint16_t flags) {
  memset(buf, 0, NLBUF);
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | flags;
  return nlh;
}

/* ---- parsing ---- */

static int parse_mac(const char *s, unsigned char mac[6]) {
  char tail;
  return sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx%c", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5], &tail) == 6 ? 0 : -1;
}

struct prefix {
  int family; /* AF_INET or AF_INET6 */
  unsigned char addr[16];
  int len; /* prefix length, bits */
};

/* "addr/len" → prefix; -1 when malformed. */
static int parse_prefix(const char *s, struct prefix *p) {
  char tmp[INET6_ADDRSTRLEN + 8];
  const char *slash = strchr(s, '/');
  if (!slash || (size_t)(slash - s) >= sizeof tmp) return -1;
  memcpy(tmp, s, (size_t)(slash - s));
  tmp[slash - s] = 0;
  p->family = strchr(tmp, ':') ? AF_INET6 : AF_INET;
  if (inet_pton(p->family, tmp, p->addr) != 1) return -1;
  char *end;
  long len = strtol(slash + 1, &end, 10);
  if (*end || end == slash + 1 || len < 0 || len > (p->family == AF_INET ? 32 : 128)) return -1;
  p->len = (int)len;
  return 0;
}

static size_t addr_size(int family) { return family == AF_INET ? 4 : 16; }

/* ---- requests ---- */

/* Opens the netns file `path` (nsfs files are regular files): O_NONBLOCK and the type check keep
 * a FIFO or device named as CNI_NETNS from blocking the helper. Returns the fd, or -1 (answer set). */
static int open_netns(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return fail(errno, "open netns %s", path);
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int e = errno;
    close(fd);
    return fail(e, "open netns %s", path);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return fail(EINVAL, "open netns %s: not a namespace file", path);
  }
  return fd;
}

/* Enters the netns file `path` (moving back is enter_host()). */
static int enter_netns(const char *path) {
  int fd = open_netns(path);
  if (fd < 0) return -1;
  int r = setns(fd, CLONE_NEWNET);
  int e = errno;
  close(fd);
  if (r < 0) return fail(e, "setns %s", path);
  return 0;
}

static void enter_host(void) {
  if (setns(host_ns, CLONE_NEWNET) < 0) {
    /* Cannot get back: every later request would run in the wrong netns. */
    perror("fake-cni-link: setns back to the starting netns");
    exit(1);
  }
}

static int del_link(struct nl *nl, const char *name) {
  char buf[NLBUF];
  struct nlmsghdr *nlh = msg_start(buf, RTM_DELLINK, NLM_F_ACK);
  struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
  ifm->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
  return nl_talk(nl, nlh, NULL, NULL);
}

/* RTM_NEWLINK: HOSTIF <-> IFNAME (in netns fd `nsfd`), kind veth; the host end up. */
static int create_pair(struct nl *nl, const char *host_if, const char *ifname, unsigned mtu,
                       const unsigned char hmac[6], const unsigned char cmac[6], int nsfd) {
  char buf[NLBUF];
  struct nlmsghdr *nlh = msg_start(buf, RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
  struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
  ifm->ifi_family = AF_UNSPEC;
  ifm->ifi_flags = IFF_UP;
  ifm->ifi_change = IFF_UP;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, host_if);
  mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
  mnl_attr_put(nlh, IFLA_ADDRESS, 6, hmac);
  struct nlattr *linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
  struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  struct nlattr *peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
  struct ifinfomsg *pifm = mnl_nlmsg_put_extra_header(nlh, sizeof *pifm);
  pifm->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
  mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
  mnl_attr_put(nlh, IFLA_ADDRESS, 6, cmac);
  mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)nsfd);
  mnl_attr_nest_end(nlh, peer);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, linkinfo);
  return nl_talk(nl, nlh, NULL, NULL);
}

static int set_up(struct nl *nl, int ifindex) {
  char buf[NLBUF];
  struct nlmsghdr *nlh = msg_start(buf, RTM_NEWLINK, NLM_F_ACK);
  struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
  ifm->ifi_family = AF_UNSPEC;
  ifm->ifi_index = ifindex;
  ifm->ifi_flags = IFF_UP;
  ifm->ifi_change = IFF_UP;
  return nl_talk(nl, nlh, NULL, NULL);
}

static int add_addr(struct nl *nl, int ifindex, const struct prefix *p) {
  char buf[NLBUF];
  struct nlmsghdr *nlh = msg_start(buf, RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
  struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
  ifa->ifa_family = (unsigned char)p->family;
  ifa->ifa_prefixlen = (unsigned char)p->len;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = (unsigned)ifindex;
  mnl_attr_put(nlh, IFA_LOCAL, addr_size(p->family), p->addr);
  mnl_attr_put(nlh, IFA_ADDRESS, addr_size(p->family), p->addr);
  if (p->family == AF_INET6) {
    ifa->ifa_flags = IFA_F_NODAD;
    mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
  }
  return nl_talk(nl, nlh, NULL, NULL);
}

/* "dst/len" or "dst/len@gw": a unicast route in table main through `ifindex`. */
static int add_route(struct nl *nl, int ifindex, const struct prefix *dst, const unsigned char *gw) {
  char buf[NLBUF];
  struct nlmsghdr *nlh = msg_start(buf, RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
  struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof *rtm);
  rtm->rtm_family = (unsigned char)dst->family;
  rtm->rtm_dst_len = (unsigned char)dst->len;
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_BOOT;
  rtm->rtm_scope = gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  rtm->rtm_type = RTN_UNICAST;
  if (dst->len > 0) mnl_attr_put(nlh, RTA_DST, addr_size(dst->family), dst->addr);
  if (gw) mnl_attr_put(nlh, RTA_GATEWAY, addr_size(dst->family), gw);
  mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)ifindex);
  return nl_talk(nl, nlh, NULL, NULL);
}

/* Inside the container netns: addresses, link up, routes. Answer set on failure. */
static int configure_inside(const char *ifname, char *addrs, char *routes) {
  struct nl nl = {0};
  int r = nl_open(&nl);
  if (r < 0) return fail(-r, "netlink socket in the container netns");
  int idx = (int)if_nametoindex(ifname);
  if (idx == 0) {
    r = fail(errno, "find %s in the container netns", ifname);
    goto out;
  }
  char *save = NULL;
  for (char *a = strcmp(addrs, "-") ? strtok_r(addrs, ",", &save) : NULL; a; a = strtok_r(NULL, ",", &save)) {
    struct prefix p;
    if (parse_prefix(a, &p) < 0) {
      r = fail(EINVAL, "address %s", a);
      goto out;
    }
    if ((r = add_addr(&nl, idx, &p)) < 0) {
      r = fail(-r, "RTM_NEWADDR %s dev %s", a, ifname);
      goto out;
    }
  }
  if ((r = set_up(&nl, idx)) < 0) {
    r = fail(-r, "RTM_NEWLINK %s up", ifname);
    goto out;
  }
  save = NULL;
  for (char *rt = strcmp(routes, "-") ? strtok_r(routes, ",", &save) : NULL; rt; rt = strtok_r(NULL, ",", &save)) {
    struct prefix dst;
    unsigned char gw[16];
    char *at = strchr(rt, '@');
    if (at) *at = 0;
    if (parse_prefix(rt, &dst) < 0 || (at && inet_pton(dst.family, at + 1, gw) != 1)) {
      r = fail(EINVAL, "route %s%s%s", rt, at ? " via " : "", at ? at + 1 : "");
      goto out;
    }
    if ((r = add_route(&nl, idx, &dst, at ? gw : NULL)) < 0) {
      r = fail(-r, "RTM_NEWROUTE %s%s%s dev %s", rt, at ? " via " : "", at ? at + 1 : "", ifname);
      goto out;
    }
  }
  r = 0;
out:
  nl_close(&nl);
  return r;
}

/* add NETNS IFNAME HOSTIF MTU CMAC HMAC ADDRS ROUTES */
static int do_add(struct nl *host, char **f) {
  const char *netns = f[1], *ifname = f[2], *host_if = f[3];
  unsigned char cmac[6], hmac[6];
  char *end;
  unsigned long mtu = strtoul(f[4], &end, 10);
  if (*end || end == f[4] || mtu < 68 || mtu > 65535) return fail(EINVAL, "mtu %s", f[4]);
  if (parse_mac(f[5], cmac) < 0) return fail(EINVAL, "container mac %s", f[5]);
  if (parse_mac(f[6], hmac) < 0) return fail(EINVAL, "host mac %s", f[6]);
  if (strlen(ifname) >= IFNAMSIZ || strlen(host_if) >= IFNAMSIZ) return fail(EINVAL, "interface name too long");
  int nsfd = open_netns(netns);
  if (nsfd < 0) return -1;
  int r = create_pair(host, host_if, ifname, (unsigned)mtu, hmac, cmac, nsfd);
  if (r < 0) {
    close(nsfd);
    return fail(-r, "RTM_NEWLINK veth %s peer %s netns %s", host_if, ifname, netns);
  }
  r = setns(nsfd, CLONE_NEWNET);
  int e = errno;
  close(nsfd);
  if (r < 0) r = fail(e, "setns %s", netns);
  else {
    r = configure_inside(ifname, f[7], f[8]);
    enter_host();
  }
  if (r < 0) del_link(host, host_if); /* keep the first error's answer */
  else snprintf(answer, sizeof answer, "ok");
  return r;
}

static int do_del(struct nl *host, char **f) {
  int r = del_link(host, f[1]);
  if (r == -ENODEV) snprintf(answer, sizeof answer, "ok\tmissing");
  else if (r < 0) return fail(-r, "RTM_DELLINK %s", f[1]);
  else snprintf(answer, sizeof answer, "ok");
  return 0;
}

struct addr_walk {
  int ifindex;
  size_t len;   /* bytes of `answer` used */
  int overflow; /* an address did not fit */
};

static int addr_cb(const struct nlmsghdr *nlh, void *data) {
  struct addr_walk *w = data;
  struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
  if ((int)ifa->ifa_index != w->ifindex) return MNL_CB_OK;
  const void *a = NULL;
  struct nlattr *attr;
  mnl_attr_for_each(attr, nlh, sizeof *ifa) {
    int t = mnl_attr_get_type(attr);
    /* IFA_LOCAL is the address itself for IPv4; IPv6 has only IFA_ADDRESS. */
    if (t == IFA_LOCAL || (t == IFA_ADDRESS && !a)) a = mnl_attr_get_payload(attr);
  }
  if (!a) return MNL_CB_OK;
  char s[INET6_ADDRSTRLEN];
  if (!inet_ntop(ifa->ifa_family, a, s, sizeof s)) return MNL_CB_OK;
  size_t n = (size_t)snprintf(answer + w->len, sizeof answer - w->len, "%s%s/%u", w->len > 3 ? "," : "", s, ifa->ifa_prefixlen);
  if (w->len + n >= sizeof answer) {
    answer[w->len] = 0; /* drop the partial entry */
    w->overflow = 1;
    return MNL_CB_OK;
  }
  w->len += n;
  return MNL_CB_OK;
}

/* One RTM_GETADDR dump of the current netns into `answer` for interface `idx`; 0 or -errno
 * (-EINTR: the kernel flagged the dump NLM_F_DUMP_INTR, addresses changed while it ran). */
static int dump_addrs(int idx, struct addr_walk *w) {
  struct nl nl = {0};
  int r = nl_open(&nl);
  if (r < 0) return r;
  char buf[NLBUF];
  struct nlmsghdr *nlh = msg_start(buf, RTM_GETADDR, NLM_F_DUMP);
  struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
  ifa->ifa_family = AF_UNSPEC;
  *w = (struct addr_walk){idx, 3, 0};
  snprintf(answer, sizeof answer, "ok\t");
  r = nl_talk(&nl, nlh, addr_cb, w);
  nl_close(&nl); /* a new socket per try: an interrupted dump leaves messages unread */
  return r;
}

static int do_addrs(char **f) {
  if (enter_netns(f[1]) < 0) return -1;
  int r;
  int idx = (int)if_nametoindex(f[2]);
  if (idx == 0) r = fail(errno, "find %s in %s", f[2], f[1]);
  else {
    struct addr_walk w;
    /* A dump spread over several reads is flagged when an address changed meanwhile (the kernel
     * finishes each new IPv6 address's DAD work, nodad or not, asynchronously): dump again after
     * 10, 20, ... 320 ms (~0.6 s in all), then report EINTR. */
    for (int tries = 0; (r = dump_addrs(idx, &w)) == -EINTR && tries < 6; tries++) {
      struct timespec ts = {0, (10L << tries) * 1000000L};
      nanosleep(&ts, NULL);
    }
    if (r < 0) r = fail(-r, "RTM_GETADDR in %s", f[1]);
    else if (w.overflow) r = fail(ERANGE, "addresses of %s in %s longer than %d bytes", f[2], f[1], MAX_ANSWER);
  }
  enter_host();
  return r;
}

/* Splits `line` at TABs into at most MAX_FIELDS fields; returns the count. */
static int split(char *line, char **f) {
  int n = 0;
  for (char *p = line; n < MAX_FIELDS;) {
    f[n++] = p;
    char *tab = strchr(p, '\t');
    if (!tab) break;
    *tab = 0;
    p = tab + 1;
  }
  return n;
}

/* Runs one request (fields `f`, `n` of them); the answer is left in `answer`. Returns 0 on ok. */
static int handle(struct nl *host, char **f, int n) {
  if (n == 9 && !strcmp(f[0], "add")) return do_add(host, f);
  if (n == 2 && !strcmp(f[0], "del")) return do_del(host, f);
  if (n == 3 && !strcmp(f[0], "addrs")) return do_addrs(f);
  return fail(EINVAL, "request %s with %d field(s): want add (9), del (2) or addrs (3)", f[0], n);
}

/* Reads request lines from stdin until EOF, answering each: with `handle`, or, when `host` is NULL
 * (start-up failed), with the start-up error already in `answer`, so every caller learns why. */
static void serve(struct nl *host) {
  char saved[MAX_ANSWER];
  if (!host) memcpy(saved, answer, sizeof saved);
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  setvbuf(stdout, NULL, _IOLBF, 0);
  while ((len = getline(&line, &cap, stdin)) >= 0) {
    if (len && line[len - 1] == '\n') line[--len] = 0;
    char *f[MAX_FIELDS];
    int n = split(line, f);
    if (!host) memcpy(answer, saved, sizeof answer);
    else if (len > MAX_REQUEST) fail(EINVAL, "request longer than %d bytes", MAX_REQUEST);
    else handle(host, f, n);
    puts(answer);
  }
  free(line);
}

int main(int argc, char **argv) {
  struct nl host = {0};
  int r = 0;
  host_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (host_ns < 0) r = fail(errno, "netlink socket: open /proc/self/ns/net");
  else if ((r = nl_open(&host)) < 0) r = fail(-r, "netlink socket");
  if (argc > 1) { /* one request from argv */
    if (r == 0) {
      char *f[MAX_FIELDS];
      int n = argc - 1 > MAX_FIELDS ? MAX_FIELDS : argc - 1;
      for (int i = 0; i < n; i++) f[i] = argv[i + 1];
      r = handle(&host, f, argc - 1 > MAX_FIELDS ? MAX_FIELDS + 1 : n);
    }
    puts(answer);
  } else {
    serve(r == 0 ? &host : NULL);
    r = 0;
  }
  nl_close(&host);
  return r < 0 ? 1 : 0;
}
