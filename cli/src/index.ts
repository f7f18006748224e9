// The CLI's pure helpers, for tests and for tools that want amber's formatting.
export { CliError, markLogged, oclifMessage, QuietExit, reportError, type Report } from './errors';
export { bytes, counterLine, hex, table } from './format';
export { progressText } from './progress';
export { jsonReplacer, renderImage, renderValue, toJson, type DecodedImage } from './render';
export { translateCriuArgv, type CriuCall } from './criu-argv';
