/**
 * Errors of the emulated cgroup v2 filesystem. Each carries the errno name the kernel's cgroup2
 * filesystem returns for the same operation (Documentation/admin-guide/cgroup-v2.rst and
 * kernel/cgroup/cgroup.c), and the FUSE daemon answers the syscall with that errno.
 */

/** Linux errno numbers used by the emulation (asm-generic/errno-base.h, errno.h). */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EAGAIN: 11,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ERANGE: 34,
  ENOTEMPTY: 39,
  EOPNOTSUPP: 95,
} as const;

/** Name of an errno the emulation can return. */
export type ErrnoName = keyof typeof ERRNO;

/**
 * A refused cgroup operation. `code` is the errno name (e.g. `EBUSY`), `errno` its number.
 * The model guarantees that an operation which throws this changed nothing.
 */
export class CgroupError extends Error {
  readonly code: ErrnoName;
  readonly errno: number;
  constructor(code: ErrnoName, message: string) {
    super(`${code}: ${message}`);
    this.name = "CgroupError";
    this.code = code;
    this.errno = ERRNO[code];
  }
}
