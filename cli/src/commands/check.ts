import { Flags } from '@oclif/core';
import { AmberCommand, pluginFlag } from '../base';
import { CliError } from '../errors';
import { plural, table } from '../format';
import { toJson } from '../render';

export default class Check extends AmberCommand {
  static override summary = 'Check that the kernel has the features amber needs';
  static override description = 'Exits 1 when a required feature is missing; optional ones only make some work slower or unavailable.';
  static override examples = ['<%= config.bin %> check', '<%= config.bin %> check --json'];

  static override flags = {
    json: Flags.boolean({ description: 'print the features as JSON' }),
    plugin: pluginFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Check);
    const core = await this.loadCore();
    // the core's features, then what each plugin says it needs (ResourcePlugin.checks)
    const features = core.checkFeatures(this.discoverPlugins(core, flags.plugin).all());
    if (flags.json) {
      this.log(toJson(features));
    } else {
      const rows = [['FEATURE', 'STATUS', 'NEEDED', 'FOR', 'WHY']];
      for (const f of features) {
        rows.push([f.name, f.present ? 'present' : 'MISSING', f.required ? 'required' : 'optional', f.plugin ?? 'core', f.detail ? `${f.why} (${f.detail})` : f.why]);
      }
      this.log(table(rows).join('\n'));
    }
    const missing = features.filter((f) => f.required && !f.present);
    if (missing.length) {
      throw new CliError(`${plural(missing.length, 'required kernel feature is', 'required kernel features are')} missing: ${missing.map((f) => f.name).join(', ')}`);
    }
  }
}
