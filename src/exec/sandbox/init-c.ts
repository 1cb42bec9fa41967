/**
 * The sandbox init in C: the same job and the same protocol as ./init.ts (InitSpec JSON line on
 * fd 3; {t:'created'} / {t:'error'} lines back; execve), without Node's ~100+ ms startup. It is
 * compiled on first use with the host's C compiler into /run/tsbuild/bin/init-<hash> (root-only
 * dir, atomic rename) and the Node init is the fallback when there is no compiler
 * (TSBUILD_SANDBOX_INIT=node forces it). Both inits must stay behaviourally identical: the test
 * suite runs against the default one and a subset against the Node one (init-node.test.ts).
 *
 * Written as String.raw so backslashes are C's own; the source must not contain a backtick or
 * a dollar sign followed by a brace.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';

export const INIT_C_SOURCE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <dirent.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

/* ------------------------------------------------------------------ buffers and output */
typedef struct { char *p; size_t n, cap; } buf_t;
static void bput(buf_t *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) { b->cap = (b->n + n + 1) * 2; b->p = realloc(b->p, b->cap); if (!b->p) _exit(125); }
  memcpy(b->p + b->n, s, n); b->n += n; b->p[b->n] = 0;
}
static void bputs(buf_t *b, const char *s) { bput(b, s, strlen(s)); }
static void bputjs(buf_t *b, const char *s) {
  bputs(b, "\"");
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    char tmp[8];
    if (*c == '"' || *c == '\\') { tmp[0] = '\\'; tmp[1] = (char)*c; bput(b, tmp, 2); }
    else if (*c < 0x20) { snprintf(tmp, sizeof tmp, "\\u%04x", *c); bputs(b, tmp); }
    else bput(b, (const char *)c, 1);
  }
  bputs(b, "\"");
}
static void send_raw(const char *s, size_t n) {
  while (n) { ssize_t w = write(3, s, n); if (w < 0) { if (errno == EINTR || errno == EAGAIN) continue; return; } s += w; n -= (size_t)w; }
}
static void fail(const char *kind, const char *fmt, ...) {
  char msg[4096]; va_list ap; va_start(ap, fmt); vsnprintf(msg, sizeof msg, fmt, ap); va_end(ap);
  buf_t b = {0};
  bputs(&b, "{\"t\":\"error\",\"kind\":"); bputjs(&b, kind); bputs(&b, ",\"message\":"); bputjs(&b, msg); bputs(&b, "}\n");
  send_raw(b.p, b.n);
  _exit(!strcmp(kind, "exec-notfound") ? 127 : !strcmp(kind, "exec-noperm") ? 126 : 125);
}
#define CHECK(expr, ...) do { if ((long)(expr) < 0) { int e_ = errno; char w_[1024]; snprintf(w_, sizeof w_, __VA_ARGS__); fail("setup", "%s: %s", w_, strerror(e_)); } } while (0)

/* ------------------------------------------------------------------ a small JSON reader */
enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
typedef struct json { int t; double num; int b; char *str; struct json **items; char **keys; size_t n; } json;
static const char *jp;
static void jws(void) { while (*jp == ' ' || *jp == '\n' || *jp == '\r' || *jp == '\t') jp++; }
static void pututf8(buf_t *b, unsigned cp) {
  char o[4]; int n;
  if (cp < 0x80) { o[0] = (char)cp; n = 1; }
  else if (cp < 0x800) { o[0] = (char)(0xc0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3f)); n = 2; }
  else if (cp < 0x10000) { o[0] = (char)(0xe0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[2] = (char)(0x80 | (cp & 0x3f)); n = 3; }
  else { o[0] = (char)(0xf0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3f)); o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[3] = (char)(0x80 | (cp & 0x3f)); n = 4; }
  bput(b, o, (size_t)n);
}
static unsigned hex4(void) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = *jp++; v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0'); else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10); else fail("internal", "bad \\u escape in spec");
  }
  return v;
}
static char *jstring(void) {
  buf_t b = {0}; bput(&b, "", 0);
  if (*jp != '"') fail("internal", "spec: string expected");
  jp++;
  while (*jp != '"') {
    if (!*jp) fail("internal", "spec: unterminated string");
    if (*jp == '\\') {
      jp++;
      char c = *jp++;
      switch (c) {
        case 'n': bput(&b, "\n", 1); break; case 't': bput(&b, "\t", 1); break; case 'r': bput(&b, "\r", 1); break;
        case 'b': bput(&b, "\b", 1); break; case 'f': bput(&b, "\f", 1); break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xd800 && cp < 0xdc00 && jp[0] == '\\' && jp[1] == 'u') { jp += 2; unsigned lo = hex4(); cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00); }
          pututf8(&b, cp); break;
        }
        default: bput(&b, &c, 1);
      }
    } else { bput(&b, jp, 1); jp++; }
  }
  jp++;
  return b.p;
}
static json *jvalue(void) {
  jws();
  json *v = calloc(1, sizeof *v);
  if (*jp == '{') {
    v->t = J_OBJ; jp++; jws();
    if (*jp == '}') { jp++; return v; }
    for (;;) {
      jws(); char *k = jstring(); jws(); if (*jp++ != ':') fail("internal", "spec: ':' expected");
      json *x = jvalue();
      v->keys = realloc(v->keys, (v->n + 1) * sizeof *v->keys); v->items = realloc(v->items, (v->n + 1) * sizeof *v->items);
      v->keys[v->n] = k; v->items[v->n++] = x;
      jws(); if (*jp == ',') { jp++; continue; } if (*jp == '}') { jp++; return v; } fail("internal", "spec: bad object");
    }
  }
  if (*jp == '[') {
    v->t = J_ARR; jp++; jws();
    if (*jp == ']') { jp++; return v; }
    for (;;) {
      json *x = jvalue();
      v->items = realloc(v->items, (v->n + 1) * sizeof *v->items); v->items[v->n++] = x;
      jws(); if (*jp == ',') { jp++; continue; } if (*jp == ']') { jp++; return v; } fail("internal", "spec: bad array");
    }
  }
  if (*jp == '"') { v->t = J_STR; v->str = jstring(); return v; }
  if (!strncmp(jp, "true", 4)) { v->t = J_BOOL; v->b = 1; jp += 4; return v; }
  if (!strncmp(jp, "false", 5)) { v->t = J_BOOL; jp += 5; return v; }
  if (!strncmp(jp, "null", 4)) { v->t = J_NULL; jp += 4; return v; }
  char *end; v->t = J_NUM; v->num = strtod(jp, &end); if (end == jp) fail("internal", "spec: bad value"); jp = end; return v;
}
static json *jget(json *o, const char *k) {
  if (o && o->t == J_OBJ) for (size_t i = 0; i < o->n; i++) if (!strcmp(o->keys[i], k)) return o->items[i];
  return NULL;
}
static const char *jstr(json *o, const char *k) { json *v = jget(o, k); return v && v->t == J_STR ? v->str : NULL; }
static long jnum(json *o, const char *k, long d) { json *v = jget(o, k); return v && v->t == J_NUM ? (long)v->num : d; }
static int jbool(json *o, const char *k) { json *v = jget(o, k); return v && v->t == J_BOOL && v->b; }
static size_t jlen(json *a) { return a && a->t == J_ARR ? a->n : 0; }

/* ------------------------------------------------------------------ helpers */
static unsigned char *b64dec(const char *s, size_t *outn) {
  size_t n = strlen(s); unsigned char *o = malloc(n * 3 / 4 + 4); size_t k = 0; unsigned v = 0; int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i], d;
    if (c >= 'A' && c <= 'Z') d = c - 'A'; else if (c >= 'a' && c <= 'z') d = c - 'a' + 26; else if (c >= '0' && c <= '9') d = c - '0' + 52;
    else if (c == '+') d = 62; else if (c == '/') d = 63; else continue;
    v = (v << 6) | (unsigned)d; bits += 6;
    if (bits >= 8) { bits -= 8; o[k++] = (unsigned char)((v >> bits) & 0xff); }
  }
  *outn = k; return o;
}
static char *xasprintf(const char *fmt, ...) { va_list ap; va_start(ap, fmt); char *s; if (vasprintf(&s, fmt, ap) < 0) _exit(125); va_end(ap); return s; }

typedef struct { char **v; size_t n; } strv;
static void sv_push(strv *s, char *x) { s->v = realloc(s->v, (s->n + 1) * sizeof *s->v); s->v[s->n++] = x; }
static int sv_has(strv *s, const char *x) { for (size_t i = 0; i < s->n; i++) if (!strcmp(s->v[i], x)) return 1; return 0; }
static char *sv_join(strv *s, size_t upto) {
  buf_t b = {0}; bput(&b, "", 0);
  for (size_t i = 0; i < upto && i < s->n; i++) { if (i) bputs(&b, "/"); bputs(&b, s->v[i]); }
  return b.p;
}

/* Resolve unsafe inside root like a chroot would (see resolve.ts secureJoin). */
static char *secure_join(const char *root, const char *unsafe, int *missingFrom) {
  char *todo = strdup(unsafe), *p = todo; strv cur = {0}; int missing = -1, links = 0;
  for (;;) {
    while (*p == '/') p++;
    if (!*p) break;
    char *e = strchr(p, '/'); size_t len = e ? (size_t)(e - p) : strlen(p);
    char *comp = strndup(p, len); p += len;
    if (!strcmp(comp, ".")) { free(comp); continue; }
    if (!strcmp(comp, "..")) { if (cur.n) free(cur.v[--cur.n]); if (missing >= (int)cur.n) missing = -1; free(comp); continue; }
    if (missing >= 0) { sv_push(&cur, comp); continue; }
    char *rel = sv_join(&cur, cur.n);
    char *full = xasprintf("%s/%s%s%s", root, rel, cur.n ? "/" : "", comp);
    free(rel);
    struct stat st;
    if (lstat(full, &st) < 0) { missing = (int)cur.n; sv_push(&cur, comp); free(full); continue; }
    if (S_ISLNK(st.st_mode)) {
      if (++links > 40) fail("setup", "too many levels of symbolic links resolving %s", unsafe);
      char tgt[PATH_MAX]; ssize_t n = readlink(full, tgt, sizeof tgt - 1);
      if (n < 0) n = 0;
      tgt[n] = 0;
      if (tgt[0] == '/') { while (cur.n) free(cur.v[--cur.n]); }
      char *nt = xasprintf("%s/%s", tgt, p);
      free(todo); todo = nt; p = todo; free(comp); free(full);
      continue;
    }
    sv_push(&cur, comp); free(full);
  }
  *missingFrom = missing;
  return sv_join(&cur, cur.n);
}

/* ------------------------------------------------------------------ USER (see resolve.ts resolveUser) */
static int numeric(const char *s, unsigned *out) {
  if (!*s) return 0;
  unsigned long long v = 0;
  for (const char *c = s; *c; c++) { if (*c < '0' || *c > '9') return 0; v = v * 10 + (unsigned)(*c - '0'); if (v > 0x7fffffffULL) return -1; }
  *out = (unsigned)v; return 1;
}
static char *read_small(const char *path) {
  struct stat st;
  if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (16 << 20)) return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC); if (fd < 0) return NULL;
  char *b = malloc((size_t)st.st_size + 1); size_t n = 0; ssize_t r;
  while (n < (size_t)st.st_size && (r = read(fd, b + n, (size_t)st.st_size - n)) > 0) n += (size_t)r;
  b[n] = 0; close(fd); return b;
}
/* split text into lines of ':'-separated fields; calls fn(fields, nfields) */
typedef struct { char *f[16]; int n; } rec;
static size_t parse_recs(char *text, rec **out) {
  size_t cnt = 0; *out = NULL;
  if (!text) return 0;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (!*line || line[0] == '#') continue;
    rec r = {0}; char *s = line;
    for (;;) { if (r.n < 16) r.f[r.n++] = s; char *c = strchr(s, ':'); if (!c) break; *c = 0; s = c + 1; }
    *out = realloc(*out, (cnt + 1) * sizeof **out); (*out)[cnt++] = r;
  }
  return cnt;
}
typedef struct { unsigned uid, gid; unsigned sg[256]; int nsg; char home[PATH_MAX]; } who_t;
static void resolve_user(const char *spec, char *passwd, char *group, who_t *w) {
  char *dup = strdup(spec), *colon = strchr(dup, ':');
  const char *userArg = dup, *groupArg = "";
  if (colon) { *colon = 0; groupArg = colon + 1; }
  unsigned uidArg = 0; int un = numeric(userArg, &uidArg);
  if (un < 0) fail("user", "uids and gids must be in range 0-2147483647");
  rec *pw; size_t npw = parse_recs(passwd, &pw);
  rec *gr; size_t ngr = parse_recs(group, &gr);
  char name[256] = ""; w->uid = 0; w->gid = 0; strcpy(w->home, "/"); w->nsg = 0;
  int matched = 0;
  for (size_t i = 0; i < npw && !matched; i++) {
    unsigned u, g;
    if (pw[i].n < 4 || numeric(pw[i].f[2], &u) != 1 || numeric(pw[i].f[3], &g) != 1) continue;
    int hit = !*userArg ? u == 0 : un == 1 ? u == uidArg : !strcmp(pw[i].f[0], userArg);
    if (!hit) continue;
    matched = 1; snprintf(name, sizeof name, "%s", pw[i].f[0]); w->uid = u; w->gid = g;
    snprintf(w->home, sizeof w->home, "%s", pw[i].n > 5 && *pw[i].f[5] ? pw[i].f[5] : "/");
  }
  if (!matched && *userArg) {
    if (un != 1) fail("user", "unable to find user %s: no matching entries in passwd file", userArg);
    w->uid = uidArg;
  }
  if (*groupArg || *name) {
    unsigned gidArg = 0; int gn = numeric(groupArg, &gidArg);
    int found = 0;
    for (size_t i = 0; i < ngr; i++) {
      unsigned g;
      if (gr[i].n < 3 || numeric(gr[i].f[2], &g) != 1) continue;
      int hit = 0;
      if (!*groupArg) {
        if (gr[i].n > 3) {
          char *m = strdup(gr[i].f[3]), *sv = NULL;
          for (char *t = strtok_r(m, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
            while (*t == ' ') t++;
            char *e = t + strlen(t); while (e > t && e[-1] == ' ') *--e = 0;
            if (!strcmp(t, name)) hit = 1;
          }
          free(m);
        }
      } else hit = gn == 1 ? g == gidArg : !strcmp(gr[i].f[0], groupArg);
      if (!hit) continue;
      if (*groupArg) { if (!found) w->gid = g; found = 1; }
      else {
        int dupg = 0; for (int k = 0; k < w->nsg; k++) if (w->sg[k] == g) dupg = 1;
        if (!dupg && w->nsg < 255) w->sg[w->nsg++] = g;
      }
    }
    if (*groupArg && !found) {
      if (gn == 1) w->gid = gidArg;
      else fail("user", "unable to find group %s: no matching entries in group file", groupArg);
    }
  }
}

/* ------------------------------------------------------------------ setup state */
static const char *S, *writable;
static char *R;
static int linkDirs = 0;
static strv watch;

static char *link_stack(json *dirsTopFirst, int reverse, const char *u, const char *w) {
  char *d = xasprintf("%s/l%d", S, linkDirs++);
  CHECK(mkdir(d, 0700), "mkdir %s", d);
  size_t n = jlen(dirsTopFirst);
  buf_t list = {0}; bput(&list, "", 0);
  for (size_t i = 0; i < n; i++) {
    json *x = dirsTopFirst->items[reverse ? n - 1 - i : i];
    char *l = xasprintf("%s/%zu", d, i);
    CHECK(symlink(x->str, l), "symlink %s", x->str);
    free(l);
    char num[32]; snprintf(num, sizeof num, "%s%zu", i ? ":" : "", i); bputs(&list, num);
  }
  if (u) { char *l = xasprintf("%s/u", d); CHECK(symlink(u, l), "symlink %s", u); free(l); }
  if (w) { char *l = xasprintf("%s/w", d); CHECK(symlink(w, l), "symlink %s", w); free(l); }
  CHECK(chdir(d), "chdir %s", d);
  return list.p;
}

static void do_mount(const char *src, const char *tgt, const char *type, unsigned long flags, const char *data, const char *what) {
  if (mount(src, tgt, type, flags, data) < 0) { int e = errno; fail("setup", "%s: %s", what, strerror(e)); }
}
static void remount_ro(const char *tgt, unsigned long extra) {
  char *w = xasprintf("remount %s read-only", tgt);
  do_mount(NULL, tgt, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | extra, NULL, w);
  free(w);
}

/* Make target exist inside R (dir or file); remember the writable-layer paths it may create. */
static char *ensure(const char *target, int wantDir) {
  int missingFrom;
  char *rel = secure_join(R, target, &missingFrom);
  char *full = *rel ? xasprintf("%s/%s", R, rel) : strdup(R);
  strv parts = {0};
  if (*rel) { char *c = strdup(rel), *sv = NULL; for (char *t = strtok_r(c, "/", &sv); t; t = strtok_r(NULL, "/", &sv)) sv_push(&parts, strdup(t)); free(c); }
  if (writable) {
    for (size_t i = 1; i <= parts.n; i++) {
      char *r = sv_join(&parts, i);
      if (sv_has(&watch, r)) { free(r); continue; }
      char *wp = xasprintf("%s/%s", writable, r); struct stat st;
      if (lstat(wp, &st) < 0) sv_push(&watch, r); else free(r);
      free(wp);
    }
  }
  if (missingFrom >= 0) {
    size_t dirEnd = wantDir ? parts.n : parts.n - 1;
    for (size_t i = (size_t)missingFrom; i < dirEnd; i++) {
      char *r = sv_join(&parts, i + 1); char *p = xasprintf("%s/%s", R, r);
      if (mkdir(p, 0755) < 0 && errno != EEXIST) CHECK(-1, "mkdir %s", target);
      free(r); free(p);
    }
    if (!wantDir) { int fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644); CHECK(fd, "create mount point %s", target); close(fd); }
  } else {
    struct stat st;
    CHECK(stat(full, &st), "stat %s", target);
    if (wantDir && !S_ISDIR(st.st_mode)) fail("setup", "cannot mount on %s: not a directory in the image", target);
    if (!wantDir && S_ISDIR(st.st_mode)) fail("setup", "cannot mount a file on %s: it is a directory in the image", target);
  }
  free(rel);
  return full;
}

static char *readspec(void) {
  buf_t b = {0}; char tmp[65536];
  for (;;) {
    ssize_t n = read(3, tmp, sizeof tmp);
    if (n < 0) { if (errno == EINTR || errno == EAGAIN) { usleep(1000); continue; } fail("internal", "read spec: %s", strerror(errno)); }
    if (n == 0) fail("internal", "the parent closed the control socket before sending the spec");
    bput(&b, tmp, (size_t)n);
    if (memchr(tmp, '\n', (size_t)n)) break;
  }
  return b.p;
}

int main(int argc, char **argv0) {
  /* Started straight from tsbuild (argv: --unshare PARENTPID): make the namespaces ourselves,
     like setpriv --pdeathsig KILL + unshare --fork --kill-child would, minus two execs. */
  int selfUnshare = argc > 2 && !strcmp(argv0[1], "--unshare");
  if (selfUnshare) {
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != (pid_t)atol(argv0[2])) _exit(125); /* tsbuild already gone */
    /* The namespaces come BEFORE the spec: they do not depend on it, except the network one,
       which PID 1 makes once it has read the spec (below). So a spare init (index.ts), spawned
       while the previous RUN runs, has its namespaces and PID 1 ready when its spec arrives. */
    CHECK(unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID), "unshare");
    CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "make / private");
    pid_t waiter = getpid();
    pid_t child = fork();
    CHECK(child, "fork");
    if (child > 0) {
      /* The waiter: hold nothing open, wait for PID 1, exit the way it did. */
      syscall(SYS_close_range, 0U, ~0U, 0);
      int st;
      while (waitpid(child, &st, 0) < 0) if (errno != EINTR) _exit(125);
      if (WIFEXITED(st)) _exit(WEXITSTATUS(st));
      int sig = WTERMSIG(st);
      struct rlimit nocore = { 0, 0 };
      setrlimit(RLIMIT_CORE, &nocore);
      signal(sig, SIG_DFL);
      sigset_t one; sigemptyset(&one); sigaddset(&one, sig); sigprocmask(SIG_UNBLOCK, &one, NULL);
      kill(getpid(), sig);
      _exit(128 + sig);
    }
    /* PID 1 of the new namespace: die with the waiter. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    (void)waiter;
  }
  char *text = readspec();
  jp = text;
  json *spec = jvalue();
  S = jstr(spec, "scratch");
  if (!S) fail("internal", "spec without scratch");
  json *root = jget(spec, "root");
  const char *rootKind = jstr(root, "kind");
  int insecure = jbool(spec, "insecure");
  /* network none: its own network namespace (before /sys is mounted: sysfs shows the mounter's). */
  if (selfUnshare && jbool(spec, "loUp")) CHECK(unshare(CLONE_NEWNET), "unshare network");

  /* 1. private scratch tmpfs */
  do_mount("tsbuild", S, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700,size=65536k", "mount scratch tmpfs");
  R = xasprintf("%s/root", S);
  CHECK(mkdir(R, 0755), "mkdir root");

  /* 2. the root */
  if (!strcmp(rootKind, "overlay")) {
    json *lowers = jget(root, "lowerdirs");
    char *list;
    if (jlen(lowers) == 0) {
      char *e = xasprintf("%s/empty", S); CHECK(mkdir(e, 0755), "mkdir empty");
      json one = { .t = J_ARR }; json ev = { .t = J_STR, .str = e }; json *items[1] = { &ev }; one.items = items; one.n = 1;
      list = link_stack(&one, 0, jstr(root, "upperdir"), jstr(root, "workdir"));
    } else {
      if (jlen(lowers) > 500) fail("setup", "too many layers (%zu): overlayfs stacks at most 500", jlen(lowers));
      list = link_stack(lowers, 1, jstr(root, "upperdir"), jstr(root, "workdir"));
    }
    /* volatile (Linux 5.10+): no sync of the upper file system, in particular none when the
       overlay goes away with the namespace: without it every RUN's teardown was a syncfs of the
       whole host file system holding the store (the RUN's own writes and everyone else's dirty
       data). Nothing is lost: the layer tar is written and fsynced from the upper afterwards,
       and the store never promised more than "survives a killed process" for snapshots. Older
       kernels refuse the option (EINVAL): then without it. */
    char *opts = xasprintf("lowerdir=%s,upperdir=u,workdir=w,redirect_dir=off,metacopy=off,index=off,volatile", list);
    if (mount("overlay", R, "overlay", 0, opts) < 0) {
      if (errno != EINVAL) { int e = errno; fail("setup", "mount overlay root: %s", strerror(e)); }
      opts[strlen(opts) - strlen(",volatile")] = 0;
      do_mount("overlay", R, "overlay", 0, opts, "mount overlay root");
    }
    CHECK(chdir("/"), "chdir /");
    writable = jstr(root, "upperdir");
  } else if (!jbool(root, "readonly")) {
    char *w = xasprintf("bind %s as the root", jstr(root, "dir"));
    do_mount(jstr(root, "dir"), R, NULL, MS_BIND, NULL, w);
    writable = jstr(root, "dir");
  } else {
    char *ru = xasprintf("%s/ru", S), *rw = xasprintf("%s/rw", S);
    CHECK(mkdir(ru, 0755), "mkdir"); CHECK(mkdir(rw, 0755), "mkdir");
    json one = { .t = J_ARR }; json ev = { .t = J_STR, .str = (char *)jstr(root, "dir") }; json *items[1] = { &ev }; one.items = items; one.n = 1;
    char *list = link_stack(&one, 0, ru, rw);
    char *opts = xasprintf("lowerdir=%s,upperdir=u,workdir=w,redirect_dir=off,metacopy=off,index=off", list);
    do_mount("overlay", R, "overlay", 0, opts, "mount read-only root");
    CHECK(chdir("/"), "chdir /");
  }

  /* 3. /proc /dev /sys */
  char *procp = ensure("/proc", 1);
  do_mount("proc", procp, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, "mount proc");
  char *dev = ensure("/dev", 1);
  do_mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k", "mount /dev");
  struct { const char *n; int ma, mi; } nodes[] = { {"null",1,3}, {"zero",1,5}, {"full",1,7}, {"random",1,8}, {"urandom",1,9}, {"tty",5,0} };
  for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
    char *p = xasprintf("%s/%s", dev, nodes[i].n);
    CHECK(mknod(p, S_IFCHR | 0666, makedev(nodes[i].ma, nodes[i].mi)), "mknod %s", p);
    CHECK(chmod(p, 0666), "chmod %s", p);
    free(p);
  }
  const char *subdirs[] = { "pts", "shm", "mqueue" };
  for (int i = 0; i < 3; i++) { char *p = xasprintf("%s/%s", dev, subdirs[i]); CHECK(mkdir(p, 0755), "mkdir %s", p); free(p); }
  char *pts = xasprintf("%s/pts", dev), *shm = xasprintf("%s/shm", dev), *mq = xasprintf("%s/mqueue", dev);
  do_mount("devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5", "mount devpts");
  do_mount("shm", shm, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k", "mount /dev/shm");
  do_mount("mqueue", mq, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, "mount mqueue");
  const char *links[][2] = { {"pts/ptmx","ptmx"}, {"/proc/self/fd","fd"}, {"/proc/self/fd/0","stdin"}, {"/proc/self/fd/1","stdout"}, {"/proc/self/fd/2","stderr"} };
  for (int i = 0; i < 5; i++) { char *p = xasprintf("%s/%s", dev, links[i][1]); CHECK(symlink(links[i][0], p), "symlink %s", p); free(p); }
  char *sysp = ensure("/sys", 1);
  do_mount("sysfs", sysp, "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | (insecure ? 0 : MS_RDONLY), NULL, "mount sysfs");
  /* /sys/fs/cgroup as runc sets it up for a BuildKit RUN on a cgroup v1 host: a tmpfs holding one
     read-only bind per v1 hierarchy of the sandbox's OWN cgroup (the one it joins below, else the
     init's), then the tmpfs itself read-only. Never a host cgroup root writable from inside. */
  {
    char *cgt = xasprintf("%s/fs/cgroup", sysp); struct stat cst;
    DIR *hd = opendir("/sys/fs/cgroup");
    if (hd && stat(cgt, &cst) == 0 && S_ISDIR(cst.st_mode)) {
      do_mount("tmpfs", cgt, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755", "mount /sys/fs/cgroup");
      json *cgp0 = jget(spec, "cgroupProcs");
      struct dirent *de;
      while ((de = readdir(hd))) {
        if (de->d_name[0] == '.') continue;
        char *hp = xasprintf("/sys/fs/cgroup/%s", de->d_name); struct statfs sf; struct stat hst;
        if (lstat(hp, &hst) < 0 || !S_ISDIR(hst.st_mode) || statfs(hp, &sf) < 0 || sf.f_type != 0x27e0eb) { free(hp); continue; }
        /* the sandbox's cgroup in this hierarchy, if it has one */
        char *own = NULL; size_t hl = strlen(hp);
        for (size_t i = 0; i < jlen(cgp0); i++) {
          const char *c = cgp0->items[i]->str;
          if (!strncmp(c, hp, hl) && c[hl] == '/') { own = strdup(c); *strrchr(own, '/') = 0; break; }
        }
        if (!own) {
          /* else the init's own cgroup there (from /proc/self/cgroup: "N:ctrl[,ctrl]:/path") */
          FILE *pc = fopen("/proc/self/cgroup", "re"); char line[4096];
          while (pc && fgets(line, sizeof line, pc)) {
            char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL; if (!b) continue;
            *b = 0; line[strcspn(b + 1, "\n") + (size_t)(b + 1 - line)] = 0;
            const char *ctrls = a + 1, *nm = de->d_name; char want[300];
            snprintf(want, sizeof want, "name=%s", nm);
            char *cc = strdup(ctrls), *sv = NULL; int hit = 0;
            for (char *t = strtok_r(cc, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) if (!strcmp(t, nm) || !strcmp(t, want)) hit = 1;
            if (!hit && !strcmp(ctrls, nm)) hit = 1;
            free(cc);
            if (hit) { own = xasprintf("%s%s", hp, b + 1); break; }
          }
          if (pc) fclose(pc);
        }
        char *tp = xasprintf("%s/%s", cgt, de->d_name);
        CHECK(mkdir(tp, 0555), "mkdir %s", tp);
        char *w = xasprintf("bind cgroup %s", de->d_name);
        do_mount(own ? own : hp, tp, NULL, MS_BIND, NULL, w);
        remount_ro(tp, MS_NOSUID | MS_NODEV | MS_NOEXEC);
        free(w); free(tp); free(own); free(hp);
      }
      do_mount(NULL, cgt, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755", "remount /sys/fs/cgroup read-only");
    }
    if (hd) closedir(hd);
    free(cgt);
  }

  /* 4. provided files */
  char *fdir = xasprintf("%s/f", S);
  CHECK(mkdir(fdir, 0755), "mkdir files");
  json *files = jget(spec, "files");
  for (size_t i = 0; i < jlen(files); i++) {
    json *f = files->items[i];
    char *src = xasprintf("%s/%zu", fdir, i);
    size_t n; unsigned char *content = b64dec(jstr(f, "b64") ? jstr(f, "b64") : "", &n);
    mode_t mode = (mode_t)jnum(f, "mode", 0644);
    int fd = open(src, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode); CHECK(fd, "write %s", jstr(f, "target"));
    size_t off = 0; while (off < n) { ssize_t w = write(fd, content + off, n - off); CHECK(w, "write %s", jstr(f, "target")); off += (size_t)w; }
    CHECK(fchmod(fd, mode), "chmod"); CHECK(fchown(fd, (uid_t)jnum(f, "uid", 0), (gid_t)jnum(f, "gid", 0)), "chown");
    long mt = jnum(f, "mtimeSec", -1);
    if (mt >= 0) { struct timespec ts[2] = { { mt, 0 }, { mt, 0 } }; CHECK(futimens(fd, ts), "utimes %s", jstr(f, "target")); }
    close(fd);
    char *tgt = ensure(jstr(f, "target"), 0);
    char *w = xasprintf("bind %s", jstr(f, "target"));
    do_mount(src, tgt, NULL, MS_BIND, NULL, w);
    if (jbool(f, "readonly")) remount_ro(tgt, 0);
  }

  /* 5. the caller's mounts */
  json *mounts = jget(spec, "mounts");
  for (size_t i = 0; i < jlen(mounts); i++) {
    json *m = mounts->items[i];
    const char *type = jstr(m, "type"), *target = jstr(m, "target");
    if (!strcmp(type, "bind")) {
      struct stat st; CHECK(stat(jstr(m, "source"), &st), "stat %s", jstr(m, "source"));
      char *tgt = ensure(target, S_ISDIR(st.st_mode));
      char *w = xasprintf("bind %s on %s", jstr(m, "source"), target);
      do_mount(jstr(m, "source"), tgt, NULL, MS_BIND | MS_REC, NULL, w);
      if (jbool(m, "readonly")) remount_ro(tgt, 0);
    } else if (!strcmp(type, "tmpfs")) {
      char *opts = jget(m, "size") ? xasprintf("mode=%lo,size=%ld", jnum(m, "mode", 01777), jnum(m, "size", 0)) : xasprintf("mode=%lo", jnum(m, "mode", 01777));
      char *tgt = ensure(target, 1);
      do_mount("tmpfs", tgt, "tmpfs", MS_NOSUID | MS_NODEV, opts, "mount tmpfs");
    } else {
      char *tgt = ensure(target, 1);
      json *lowers = jget(m, "lowerdirs");
      size_t n = jlen(lowers);
      char *w = xasprintf("mount overlay on %s", target);
      if (n == 0) fail("setup", "overlay mount on %s has no layers", target);
      if (jbool(m, "writable")) {
        char *t = xasprintf("%s/t%d", S, linkDirs);
        CHECK(mkdir(t, 0700), "mkdir %s", t);
        do_mount("tsbuild", t, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700", "mount tmpfs");
        char *u = xasprintf("%s/u", t), *wk = xasprintf("%s/w", t);
        CHECK(mkdir(u, 0755), "mkdir"); CHECK(mkdir(wk, 0755), "mkdir");
        char *list = link_stack(lowers, 1, u, wk);
        char *opts = xasprintf("lowerdir=%s,upperdir=u,workdir=w,redirect_dir=off,metacopy=off,index=off", list);
        do_mount("overlay", tgt, "overlay", 0, opts, w);
        CHECK(chdir("/"), "chdir /");
      } else if (n == 1) {
        do_mount(lowers->items[0]->str, tgt, NULL, MS_BIND | MS_REC, NULL, w);
        remount_ro(tgt, 0);
      } else {
        char *list = link_stack(lowers, 1, NULL, NULL);
        char *opts = xasprintf("lowerdir=%s,redirect_dir=off,metacopy=off", list);
        do_mount("overlay", tgt, "overlay", MS_RDONLY, opts, w);
        CHECK(chdir("/"), "chdir /");
      }
    }
  }

  /* 6. masked and read-only paths */
  if (!insecure) {
    json *masked = jget(spec, "maskedPaths");
    char *devnull = xasprintf("%s/null", dev);
    for (size_t i = 0; i < jlen(masked); i++) {
      char *full = xasprintf("%s%s", R, masked->items[i]->str); struct stat st;
      if (stat(full, &st) < 0) { free(full); continue; }
      char *w = xasprintf("mask %s", masked->items[i]->str);
      if (S_ISDIR(st.st_mode)) do_mount("tmpfs", full, "tmpfs", MS_RDONLY, "size=0", w);
      else do_mount(devnull, full, NULL, MS_BIND, NULL, w);
      free(full); free(w);
    }
    json *ro = jget(spec, "readonlyPaths");
    for (size_t i = 0; i < jlen(ro); i++) {
      char *full = xasprintf("%s%s", R, ro->items[i]->str); struct stat st;
      if (stat(full, &st) < 0) { free(full); continue; }
      char *w = xasprintf("bind %s", ro->items[i]->str);
      do_mount(full, full, NULL, MS_BIND | MS_REC, NULL, w);
      remount_ro(full, MS_NOSUID | MS_NODEV | MS_NOEXEC);
      free(full); free(w);
    }
  }
  if (!strcmp(rootKind, "dir") && jbool(root, "readonly")) remount_ro(R, 0);

  /* 7. report the mount points in the writable layer */
  {
    buf_t b = {0}; bputs(&b, "{\"t\":\"created\",\"entries\":[");
    int first = 1;
    for (size_t i = 0; writable && i < watch.n; i++) {
      char *wp = xasprintf("%s/%s", writable, watch.v[i]); struct stat st;
      if (lstat(wp, &st) < 0) { free(wp); continue; }
      char num[256];
      if (!first) bputs(&b, ",");
      first = 0;
      bputs(&b, "{\"rel\":"); bputjs(&b, watch.v[i]);
      snprintf(num, sizeof num, ",\"ino\":\"%llu\",\"mode\":%u,\"uid\":%u,\"gid\":%u,\"size\":\"%lld\",\"mtimeNs\":\"%llu\",\"ctimeNs\":\"%llu\"}",
        (unsigned long long)st.st_ino, (unsigned)st.st_mode, (unsigned)st.st_uid, (unsigned)st.st_gid, (long long)st.st_size,
        (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL + (unsigned long long)st.st_mtim.tv_nsec,
        (unsigned long long)st.st_ctim.tv_sec * 1000000000ULL + (unsigned long long)st.st_ctim.tv_nsec);
      bputs(&b, num);
      free(wp);
    }
    bputs(&b, "]}\n");
    send_raw(b.p, b.n);
  }

  /* 8. host handles */
  json *cgp = jget(spec, "cgroupProcs");
  int cgfds[16]; size_t ncg = 0;
  for (size_t i = 0; i < jlen(cgp) && ncg < 16; i++) { int fd = open(cgp->items[i]->str, O_WRONLY | O_CLOEXEC); CHECK(fd, "open %s", cgp->items[i]->str); cgfds[ncg++] = fd; }
  int capLast = 40;
  { char *t = read_small("/proc/sys/kernel/cap_last_cap"); if (t) { int v = atoi(t); if (v > 0) capLast = v; } }

  /* 9. hostname, loopback */
  const char *hn = jstr(spec, "hostname");
  CHECK(sethostname(hn, strlen(hn)), "sethostname");
  if (jbool(spec, "loUp")) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); CHECK(s, "socket");
    struct ifreq ifr; memset(&ifr, 0, sizeof ifr); strcpy(ifr.ifr_name, "lo");
    CHECK(ioctl(s, SIOCGIFFLAGS, &ifr), "SIOCGIFFLAGS lo");
    ifr.ifr_flags |= IFF_UP;
    CHECK(ioctl(s, SIOCSIFFLAGS, &ifr), "SIOCSIFFLAGS lo up");
    close(s);
  }

  /* 10. pivot_root, detach the old root */
  CHECK(chdir(R), "chdir root");
  CHECK(syscall(SYS_pivot_root, ".", "."), "pivot_root");
  CHECK(umount2(".", MNT_DETACH), "detach the old root");
  CHECK(chdir("/"), "chdir /");

  /* 11. USER, HOME, WORKDIR */
  who_t who;
  resolve_user(jstr(spec, "user") ? jstr(spec, "user") : "", read_small("/etc/passwd"), read_small("/etc/group"), &who);
  json *envj = jget(spec, "env");
  size_t nenv = jlen(envj);
  char **env = calloc(nenv + 2, sizeof *env);
  int hasHome = 0;
  const char *pathVar = NULL;
  for (size_t i = 0; i < nenv; i++) {
    env[i] = envj->items[i]->str;
    if (!strncmp(env[i], "HOME=", 5)) hasHome = 1;
    if (!strncmp(env[i], "PATH=", 5)) pathVar = env[i] + 5;
  }
  if (!hasHome) env[nenv++] = xasprintf("HOME=%s", who.home);
  const char *cwd = jstr(spec, "cwd");
  {
    char *c = strdup(cwd);
    for (char *p = c + 1; ; p++) {
      if (*p == '/' || *p == 0) {
        char save = *p; *p = 0;
        if (*c && mkdir(c, 0755) < 0 && errno != EEXIST) fail("cwd", "mkdir %s: %s", cwd, strerror(errno));
        *p = save;
        if (!save) break;
      }
    }
    free(c);
  }

  /* 12. join the cgroups */
  for (size_t i = 0; i < ncg; i++) { CHECK(write(cgfds[i], "0", 1), "join cgroup"); close(cgfds[i]); }

  /* 13. capabilities, seccomp, user switch */
  json *capsj = jget(spec, "caps");
  unsigned long long keep = 0;
  for (size_t i = 0; i < jlen(capsj); i++) keep |= 1ULL << (int)capsj->items[i]->num;
  if (!insecure) for (int cap = 0; cap <= capLast; cap++) if (!(keep & (1ULL << cap))) CHECK(prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "drop capability %d", cap);
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  const char *sc = jstr(spec, "seccomp");
  if (!insecure && sc && *sc) {
    size_t n; unsigned char *prog = b64dec(sc, &n);
    struct sock_fprog fp = { .len = (unsigned short)(n / 8), .filter = (struct sock_filter *)prog };
    CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp, 0, 0), "install seccomp filter");
  }
  gid_t groups[257]; int ng = 0;
  groups[ng++] = who.gid;
  for (int i = 0; i < who.nsg; i++) if (who.sg[i] != who.gid) groups[ng++] = who.sg[i];
  CHECK(setgroups((size_t)ng, groups), "setgroups");
  CHECK(setresgid(who.gid, who.gid, who.gid), "setresgid");
  CHECK(setresuid(who.uid, who.uid, who.uid), "setresuid");
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (!insecure) {
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2]; memset(data, 0, sizeof data);
    if (who.uid == 0) {
      data[0].effective = data[0].permitted = (unsigned)(keep & 0xffffffffULL);
      data[1].effective = data[1].permitted = (unsigned)(keep >> 32);
    }
    CHECK(syscall(SYS_capset, &hdr, data), "capset");
  }
  if (chdir(cwd) < 0) fail("cwd", "chdir to cwd (\"%s\") failed: %s", cwd, errno == EACCES ? "permission denied" : strerror(errno));

  /* 14. find the program */
  (void)argv0;
  json *argvj = jget(spec, "argv");
  size_t nargv = jlen(argvj);
  if (nargv == 0 || !*argvj->items[0]->str) fail("exec-notfound", "exec: no command");
  char **argv = calloc(nargv + 1, sizeof *argv);
  for (size_t i = 0; i < nargv; i++) argv[i] = argvj->items[i]->str;
  const char *arg0 = argv[0];
  char *path = (char *)arg0;
  if (!strchr(arg0, '/')) {
    char *pv = strdup(pathVar ? pathVar : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    char *found = NULL;
    for (char *d = pv; ; ) {
      char *e = strchr(d, ':'); if (e) *e = 0;
      char *cand = xasprintf("%s/%s", *d ? d : ".", arg0); struct stat st;
      if (stat(cand, &st) == 0 && !S_ISDIR(st.st_mode) && access(cand, X_OK) == 0) { found = cand; break; }
      free(cand);
      if (!e) break;
      d = e + 1;
    }
    if (!found) fail("exec-notfound", "exec: \"%s\": executable file not found in $PATH", arg0);
    path = found;
  } else {
    struct stat st;
    if (stat(arg0, &st) < 0) fail("exec-notfound", "exec: \"%s\": stat %s: no such file or directory", arg0, arg0);
    if (S_ISDIR(st.st_mode) || access(arg0, X_OK) < 0) fail("exec-noperm", "exec: \"%s\": permission denied", arg0);
  }

  /* 15. terminal, fds, signals, umask; execve */
  if (jbool(spec, "tty")) { CHECK(setsid(), "setsid"); CHECK(ioctl(0, TIOCSCTTY, 0), "TIOCSCTTY"); }
  CHECK(syscall(SYS_close_range, 3U, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */), "close_range");
  for (int fd = 0; fd < 3; fd++) {
    fcntl(fd, F_SETFD, 0);
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  }
  umask(022);
  for (int sig = 1; sig < 65; sig++) if (sig != SIGKILL && sig != SIGSTOP && sig != 32 && sig != 33) signal(sig, SIG_DFL);
  sigset_t none; sigemptyset(&none); sigprocmask(SIG_SETMASK, &none, NULL);
  env[nenv] = NULL;
  execve(path, argv, env);
  int e = errno;
  char msg[256]; snprintf(msg, sizeof msg, "%s", strerror(e));
  for (char *c = msg; *c; c++) if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
  fail(e == ENOENT ? "exec-notfound" : "exec-noperm", "exec: \"%s\": %s", arg0, msg);
  return 125;
}
`;

const BIN_DIR = '/run/tsbuild/bin';

function findCompiler(): string | undefined {
  for (const c of ['/usr/bin/cc', '/usr/bin/gcc', '/usr/bin/clang', '/usr/local/bin/cc']) {
    try { accessSync(c, constants.X_OK); return c; } catch { /* next */ }
  }
  return undefined;
}

let cached: Promise<string | undefined> | undefined;

/**
 * Path of the compiled C init, compiling it on first use; undefined when it cannot be had (no
 * compiler, compile error, TSBUILD_SANDBOX_INIT=node): the caller then uses the Node init.
 */
export function cInitBinary(): Promise<string | undefined> {
  cached ??= build().catch(() => undefined);
  return cached;
}

async function build(): Promise<string | undefined> {
  if (process.env.TSBUILD_SANDBOX_INIT === 'node') return undefined;
  const hash = createHash('sha256').update(INIT_C_SOURCE).update(process.arch).digest('hex').slice(0, 16);
  const bin = `${BIN_DIR}/init-${hash}`;
  const trusted = (p: string): boolean => {
    try {
      const st = statSync(p);
      return st.isFile() && st.uid === 0 && (st.mode & 0o022) === 0;
    } catch { return false; }
  };
  mkdirSync(BIN_DIR, { recursive: true, mode: 0o700 });
  const dir = statSync(BIN_DIR);
  if (dir.uid !== 0 || (dir.mode & 0o022) !== 0) return undefined; // someone else's dir: do not run from it
  if (trusted(bin)) return bin;
  const cc = findCompiler();
  if (!cc) return undefined;
  const tmp = `${bin}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(`${tmp}.c`, INIT_C_SOURCE, { mode: 0o600 });
  try {
    await new Promise<void>((res, rej) => {
      execFile(cc, ['-O2', '-o', tmp, `${tmp}.c`], { timeout: 60_000 }, (err) => (err ? rej(err) : res()));
    });
    renameSync(tmp, bin);
  } finally {
    rmSync(`${tmp}.c`, { force: true });
    rmSync(tmp, { force: true });
  }
  return trusted(bin) ? bin : undefined;
}
