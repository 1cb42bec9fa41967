import type { Command } from '../command.js';
import { usageError } from '../args.js';
import { TsbError } from '../../errors.js';
import { insecureRegistries, REGISTRY_FLAGS } from '../../oci/cli-util.js';

async function readAllText(s: NodeJS.ReadableStream): Promise<string> {
  let out = '';
  for await (const c of s) out += typeof c === 'string' ? c : Buffer.from(c as Uint8Array).toString('utf8');
  return out;
}

export const command: Command = {
  name: 'login',
  summary: 'store registry credentials',
  usage: 'tsbuild login [REGISTRY] -u USER (-p PASSWORD | --password-stdin)',
  flags: [
    { name: 'username', short: 'u', type: 'string', value: 'USER', help: 'user name' },
    { name: 'password', short: 'p', type: 'string', value: 'PASSWORD', help: 'password (prefer --password-stdin)' },
    { name: 'password-stdin', type: 'bool', help: 'read the password from stdin' },
    ...REGISTRY_FLAGS,
  ],
  details: 'Credentials are checked against the registry, then saved like docker does (credential helper when configured, else config.json).',
  async run(args, ctx) {
    if (args.positional.length > 1) throw usageError('login takes at most one registry');
    const host = args.positional[0] ?? 'docker.io';
    const domain = /^(https?:\/\/)?(index\.)?docker\.io(\/v1\/?)?$/.test(host) ? 'docker.io' : host.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
    const username = args.str('username');
    if (!username) throw usageError('login needs --username', 'write tsbuild login REGISTRY -u USER --password-stdin.');
    let password = args.str('password');
    if (args.bool('password-stdin')) {
      if (password !== undefined) throw usageError('--password and --password-stdin are exclusive');
      password = (await readAllText(ctx.stdin)).replace(/\r?\n$/, '');
    }
    if (password === undefined || password === '') throw new TsbError('TSB0001', 'login needs a password', { hint: 'pass --password-stdin and pipe the password in.', exitCode: 2 });
    const { checkLogin } = await import('../../oci/registry.js');
    const { saveCredentials } = await import('../../oci/auth.js');
    const authOpts = { ...(args.str('authfile') ? { authFile: args.str('authfile')! } : {}), env: ctx.env };
    await checkLogin(domain, { username, password }, { ...authOpts, signal: ctx.signal, insecureRegistries: insecureRegistries(args, ctx) });
    const r = await saveCredentials(domain, { username, password }, authOpts);
    ctx.stdout.write(`Login Succeeded (saved in ${r.where})\n`);
    return 0;
  },
};
