// Placeholder until issue 5 lands: replace this file with the real command.
import { notYet } from './_not-yet.js';

export const command = notYet('run', 'run', 5);
