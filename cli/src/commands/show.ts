import * as fs from 'node:fs';
import * as path from 'node:path';
import { Args, Flags } from '@oclif/core';
import { AmberCommand, pluginFlag } from '../base';
import { CliError } from '../errors';
import { plural } from '../format';
import { renderImage, toJson, type DecodedImage } from '../render';

/** Raw page data: no framing to decode, only a size worth showing. */
const RAW_PAGES = /^pages-.*\.img$/;

interface Shown {
  name: string;
  image?: DecodedImage;
  error?: string;
}

/** The same shape core gives a pages file, without opening it. */
function rawPages(name: string, size: number): DecodedImage {
  return { file: name, type: 'pages', magic: 0, entries: [], rawBytes: size };
}

export default class Show extends AmberCommand {
  static override summary = 'Decode an image file, or every image of a directory';
  static override description = 'Addresses and other 64-bit values print as hex; binary blobs as their size (base64 with --json).';
  static override examples = ['<%= config.bin %> show /tmp/ckpt', '<%= config.bin %> show /tmp/ckpt/mm-4242.img --json'];

  static override args = {
    path: Args.string({ description: 'an image file or an image directory', required: true }),
  };

  static override flags = {
    json: Flags.boolean({ description: 'print JSON (64-bit numbers as strings, blobs as base64)' }),
    plugin: pluginFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Show);
    const stat = fs.statSync(args.path, { throwIfNoEntry: false });
    if (!stat) throw new CliError(`${args.path} does not exist`);
    const core = await this.loadCore();
    // The plugins register the image types they write (pipes-data, file-locks, shmem ...).
    this.discoverPlugins(core, flags.plugin);
    const decode = (file: string): DecodedImage => core.decodeImageFile(file);

    if (!stat.isDirectory()) {
      const name = path.basename(args.path);
      if (RAW_PAGES.test(name)) {
        const raw = rawPages(name, stat.size);
        this.log(flags.json ? toJson(raw) : renderImage(raw, name).join('\n'));
        return;
      }
      const image = decode(args.path);
      this.log(flags.json ? toJson(image) : renderImage(image, name).join('\n'));
      return;
    }

    const names = fs.readdirSync(args.path).filter((n) => n.endsWith('.img')).sort();
    if (names.length === 0) throw new CliError(`${args.path} holds no image files (*.img)`);
    const shown: Shown[] = names.map((name) => {
      const file = path.join(args.path, name);
      if (RAW_PAGES.test(name)) return { name, image: rawPages(name, fs.statSync(file).size) };
      try {
        return { name, image: decode(file) };
      } catch (err) {
        // One bad file should not hide the rest of the directory; it still fails the command.
        return { name, error: err instanceof Error ? err.message : String(err) };
      }
    });

    if (flags.json) this.log(toJson(shown));
    else this.log(shown.map(humanBlock).join('\n\n'));
    const failed = shown.filter((s) => s.error !== undefined);
    if (failed.length) {
      throw new CliError(`${plural(failed.length, 'image')} in ${args.path} could not be decoded: ${failed.map((f) => f.name).join(', ')}`);
    }
  }
}

function humanBlock(s: Shown): string {
  if (s.image) return renderImage(s.image, s.name).join('\n');
  return `${s.name}: cannot decode: ${s.error ?? ''}`;
}
