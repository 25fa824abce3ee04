/**
 * The domain model a driver receives: what an instance is made of (flavor, image meta, network
 * and block-device info). Plain data, no behaviour; validation lives in `validation.ts`.
 */

/** The hardware shape of an instance. */
export interface Flavor {
  /** Flavor name, e.g. `m1.tiny`. */
  readonly name: string;
  /** Memory in MiB (>= 1). */
  readonly memoryMb: number;
  /** Virtual CPUs (>= 1). */
  readonly vcpus: number;
  /** Root disk size in GiB (0 = the image's size). */
  readonly rootGb: number;
  /** Ephemeral disk size in GiB. */
  readonly ephemeralGb?: number;
  /** Swap size in MiB. */
  readonly swapMb?: number;
  /** Hypervisor-specific extra specs (`hw:cpu_policy`, ...). */
  readonly extraSpecs?: Readonly<Record<string, string>>;
}

/** Operating system families Nova distinguishes (`os_type`). */
export type OsType = "linux" | "windows" | (string & {});

/**
 * The image properties drivers read, with Glance's names. Unknown properties are kept as strings.
 */
export interface ImageProperties {
  /** Whether the image has the QEMU guest agent (`hw_qemu_guest_agent`). */
  readonly hw_qemu_guest_agent?: boolean;
  /** The user whose password `set admin password` changes (`os_admin_user`). */
  readonly os_admin_user?: string;
  /** The guest OS family (`os_type`). */
  readonly os_type?: OsType;
  /** Disk bus (`hw_disk_bus`): virtio, scsi, ide, ... */
  readonly hw_disk_bus?: string;
  /** Kernel image id for AMI-style images. */
  readonly kernel_id?: string;
  /** Ramdisk image id for AMI-style images. */
  readonly ramdisk_id?: string;
  /** Architecture (`x86_64`, `aarch64`). */
  readonly architecture?: string;
  readonly [key: string]: string | number | boolean | undefined;
}

/** Disk formats Glance knows. */
export type DiskFormat = "raw" | "qcow2" | "vmdk" | "vdi" | "vhd" | "vhdx" | "iso" | "ami" | "ari" | "aki" | "ploop";
/** Container formats Glance knows. */
export type ContainerFormat = "bare" | "ovf" | "ova" | "ami" | "ari" | "aki" | "docker" | "compressed";

/** The image an instance boots from, as the image service describes it. */
export interface ImageMeta {
  readonly id?: string;
  readonly name?: string;
  readonly diskFormat?: DiskFormat;
  readonly containerFormat?: ContainerFormat;
  /** Minimum disk in GiB. */
  readonly minDisk?: number;
  /** Minimum RAM in MiB. */
  readonly minRam?: number;
  /** Image size in bytes. */
  readonly size?: number;
  readonly properties: ImageProperties;
}

/** One virtual NIC. */
export interface NetworkInterface {
  readonly id: string;
  readonly address: string;
  readonly networkId?: string;
  readonly bridge?: string;
  readonly model?: string;
}

/** The networks an instance is plugged into. */
export type NetworkInfo = readonly NetworkInterface[];

/** One attached block device (volume). */
export interface BlockDevice {
  readonly deviceName: string;
  readonly volumeId: string;
  readonly sizeGb?: number;
  readonly bootIndex?: number;
}

/** Root and attached block devices. */
export interface BlockDeviceInfo {
  readonly rootDeviceName?: string;
  readonly devices: readonly BlockDevice[];
}

/**
 * What a driver knows about an instance: identity, shape and image. The compute service's record
 * (`InstanceRecord`) adds vm, task and power state.
 */
export interface Instance {
  /** RFC 4122 uuid (lower-case, hyphenated). */
  readonly uuid: string;
  /** Display name; letters, digits, `.`, `_`, `-`, 1..63 characters, starting with a letter or digit. */
  readonly name: string;
  readonly flavor: Flavor;
  readonly imageMeta: ImageMeta;
  /** The owner project (Nova's `project_id`), written as the snapshot image's owner. */
  readonly projectId: string;
  readonly userId?: string;
  /** Hostname the guest sees; defaults to the name. */
  readonly hostname?: string;
  /** Kernel image id (AMI-style images), written into snapshot metadata. */
  readonly kernelId?: string;
  /** Ramdisk image id (AMI-style images), written into snapshot metadata. */
  readonly ramdiskId?: string;
  /** Guest OS family; falls back to the image's `os_type`. */
  readonly osType?: OsType;
  /** Free-form metadata. */
  readonly metadata?: Readonly<Record<string, string>>;
}
