/**
 * CNI error codes (CNI spec 1.1.0, section "Error": codes 1-99 are reserved by the spec,
 * 100 and up belong to the plugin) and the error class the plugin throws internally.
 */

/** Spec-reserved codes (CNI SPEC.md "Well-known Error Codes") and this plugin's own (>= 100). */
export const CniErrorCode = {
  /** 1: incompatible CNI version (config `cniVersion` not supported, or the command is not in that version). */
  IncompatibleVersion: 1,
  /** 2: unsupported field in the network configuration. */
  UnsupportedField: 2,
  /** 3: container unknown or does not exist (CHECK of an attachment that has no IPAM record). */
  UnknownContainer: 3,
  /** 4: invalid or missing environment variables (`CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`, `CNI_ARGS`). */
  InvalidEnvironment: 4,
  /** 5: I/O failure (state directory unreadable or unwritable, stdin unreadable). */
  IoFailure: 5,
  /** 6: failed to decode content (stdin is not a JSON object). */
  DecodingFailure: 6,
  /** 7: invalid network configuration (missing name, bad subnet, range outside subnet, ...). */
  InvalidNetworkConfig: 7,
  /** 11: try again later (the IPAM lock could not be taken in time). */
  TryAgainLater: 11,
  /** 50 (STATUS): the plugin is not available to serve ADDs (state dir unusable, ranges exhausted). */
  PluginNotAvailable: 50,
  /** 51 (STATUS): limited connectivity. Not produced by this plugin. */
  LimitedConnectivity: 51,
  /** 100: every address of a range set is allocated. */
  AddressesExhausted: 100,
  /** 101: the address requested through `CNI_ARGS IP=` or `ips` is taken or outside the ranges. */
  AddressUnavailable: 101,
  /** 102: creating or configuring the veth pair failed (veth mode). */
  LinkSetupFailed: 102,
  /** 103: CHECK found the attachment's state differs from `prevResult` (record or interface). */
  CheckFailed: 103,
} as const;

/** An error that becomes the spec's error object `{cniVersion, code, msg, details}` on stdout. */
export class PluginError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details = "",
  ) {
    super(msg);
  }
}
