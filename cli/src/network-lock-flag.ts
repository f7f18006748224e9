import { Flags } from '@oclif/core';

/** CRIU's --network-lock: the values of core's NETWORK_LOCK_METHODS (not imported: --help loads no core). */
export const networkLockFlag = Flags.option({
  description:
    'how the tree\'s TCP connections are held between the freeze and their restore, so peers see a pause and no reset: ' +
    'a table of amber\'s own in the tree\'s network namespace (nftables, the default; iptables when nft is missing), a chain (iptables), or none (skip)',
  options: ['nftables', 'iptables', 'skip'] as const,
  helpValue: 'METHOD',
})();
