// The kit's bounded fan-out is core's (drivers share it).
export { forEachLimited } from "@virtkit/core";
