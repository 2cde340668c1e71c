export { BackingStore, BlockIoError, WriteOptions, AllocationExtent } from './backing-store';
export { MemoryBackingStore } from './memory-store';
