export {
  FolderSource,
  type FolderSourceOptions,
  type FolderScanOptions,
  type FolderWatchOptions,
  type SourceFile,
  type SourceDeletion,
  type SourceItem,
} from './folder-source.ts';
export { FolderWatcher, type FolderWatcherOptions, type FolderChange } from './folder-watcher.ts';
export { FileBody, type FileBodyOptions } from './file-body.ts';
export {
  FileChangedError,
  type FileChangedErrorOptions,
  type FileStamp,
} from './file-changed-error.ts';
export { FileGoneError, type FileGoneErrorOptions } from './file-gone-error.ts';
export { DigestCache, type DigestCacheOptions, type DigestCacheStats } from './digest-cache.ts';
export {
  hashFile,
  openForReading,
  type HashFileOptions,
  type HashedFile,
  type OpenFile,
} from './hash-file.ts';
export {
  scanFolder,
  nodeScanFs,
  type ScanFolderOptions,
  type ScanEntry,
  type ScannedFile,
  type SkippedEntry,
  type SkipCode,
  type ScanFs,
  type ScanStats,
} from './scan-folder.ts';
export { PathFilter, type PathFilterOptions } from './path-filter.ts';
