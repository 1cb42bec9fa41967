// Placeholder until issue 4 lands: `tsbuild cache why` (miss explanations) is the build engine's.
import { notYet } from './_not-yet.js';

export const command = notYet('cache why', 'cache why', 4);
