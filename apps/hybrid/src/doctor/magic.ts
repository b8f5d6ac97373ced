/**
 * Filesystem magic numbers (`statfs().f_type`), from the kernel's include/uapi/linux/magic.h.
 */
export const FS_MAGIC: Readonly<Record<number, string>> = {
  0xef53: "ext2/ext3", // EXT4_SUPER_MAGIC (also ext2/ext3); GNU stat prints "ext2/ext3"
  0x58465342: "xfs", // XFS_SUPER_MAGIC
  0x01021994: "tmpfs", // TMPFS_MAGIC
  0x01021997: "v9fs", // V9FS_MAGIC
  0x65735546: "fuse", // FUSE_SUPER_MAGIC
  0x794c7630: "overlayfs", // OVERLAYFS_SUPER_MAGIC
  0x63677270: "cgroup2fs", // CGROUP2_SUPER_MAGIC
  0x0027e0eb: "cgroupfs", // CGROUP_SUPER_MAGIC
  0x9fa0: "proc", // PROC_SUPER_MAGIC
  0x62656572: "sysfs", // SYSFS_MAGIC
  0x9123683e: "btrfs", // BTRFS_SUPER_MAGIC
  0x2fc12fc1: "zfs", // ZFS_SUPER_MAGIC
  0x6969: "nfs", // NFS_SUPER_MAGIC
};

export const V9FS_MAGIC = 0x01021997;
export const CGROUP2_SUPER_MAGIC = 0x63677270;
export const EXT4_SUPER_MAGIC = 0xef53;

/** `0x1021997`-style hex of a magic number. */
export function magicHex(n: number): string {
  return "0x" + (n >>> 0).toString(16);
}

/** The name GNU `stat -f -c %T` would print for a magic, or `UNKNOWN (0x...)`. */
export function magicName(n: number): string {
  return FS_MAGIC[n >>> 0] ?? `UNKNOWN (${magicHex(n)})`;
}

/**
 * Whether cAdvisor's filesystem discovery accepts this type for a data directory
 * (google/cadvisor fs.go: types starting with `ext` or `nfs`, plus btrfs, overlay, tmpfs, xfs, zfs).
 */
export function cadvisorAccepts(n: number): boolean {
  const name = FS_MAGIC[n >>> 0] ?? "";
  return name.startsWith("ext") || ["nfs", "btrfs", "overlayfs", "tmpfs", "xfs", "zfs"].includes(name);
}
