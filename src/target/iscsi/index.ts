export { IscsiServer, IscsiServerOptions, SessionInfo, DEFAULT_TIMERS } from './server';
export { IscsiTarget, ChapSecrets, ScsiDevicePort, DeviceTmfOutcome, makeNexus, nexusKeyThrough } from './target-port';
export { ConnectionTimers } from './connection';
