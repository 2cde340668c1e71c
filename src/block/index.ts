export { BackingStore, BlockIoError, WriteOptions, AllocationExtent } from './backing-store';
export { MemoryBackingStore } from './memory-store';
export { FileBackingStore } from './file-store';
export type { FileStoreOptions } from './file-store';
export { DIRECT_IO_ALIGNMENT } from './direct-io';
export { isPooledReadBuffer, releaseReadBuffer } from './io-buffers';
export { IntMap, SlotList } from './collections';
export type { Slotted } from './collections';
