import type { Command } from '../command.js';
import { usageError } from '../args.js';

export const command: Command = {
  name: 'logout',
  summary: 'remove registry credentials',
  usage: 'tsbuild logout [REGISTRY]',
  flags: [{ name: 'authfile', type: 'string', value: 'FILE', help: 'credentials file (default $DOCKER_CONFIG/config.json or ~/.docker/config.json)' }],
  async run(args, ctx) {
    if (args.positional.length > 1) throw usageError('logout takes at most one registry');
    const host = args.positional[0] ?? 'docker.io';
    const domain = /^(https?:\/\/)?(index\.)?docker\.io(\/v1\/?)?$/.test(host) ? 'docker.io' : host.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
    const { removeCredentials } = await import('../../oci/auth.js');
    const removed = await removeCredentials(domain, { ...(args.str('authfile') ? { authFile: args.str('authfile')! } : {}), env: ctx.env });
    ctx.stdout.write(removed ? `Removing login credentials for ${domain}\n` : `Not logged in to ${domain}\n`);
    return 0;
  },
};
