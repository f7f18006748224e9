export { ImageError } from './errors';
export { readPstree } from './set-checks';
export { ImageStore, type ImageContents, type ImageWriteOptions } from './store';
export {
  IMG_COMMON_MAGIC,
  IMG_SERVICE_MAGIC,
  INVENTORY_MAGIC,
  PROTO_DIR,
  registerImageType,
  registerFileEntryMember,
  fileEntryMembers,
  type FileEntryMember,
  imageTypes,
  type BuiltinImageType,
  type ImageType,
  type ImagePrefix,
  type ImageTypeRegistration,
} from './registry';
export { decodeImageFile, imageTypeOfFile, type DecodedImageFile, type ShownObject, type ShownValue } from './show';
export { fpregsFromXsave, xsaveFromFpregs } from './xsave';
export * from './types';
