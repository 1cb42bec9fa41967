// Placeholder until issue 2 lands: replace this file with the real `tsbuild debug ir`.
import { notYet } from './_not-yet.js';

export const command = notYet('debug ir', 'debug ir', 2);
