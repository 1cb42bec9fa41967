// Placeholder until issue 4 lands: replace this file with the real command.
import { notYet } from './_not-yet.js';

export const command = notYet('build', 'build', 4);
