// Placeholder until issue 2 lands: replace this file with the real command.
import { notYet } from './_not-yet.js';

export const command = notYet('debug', 'debug', 2);
