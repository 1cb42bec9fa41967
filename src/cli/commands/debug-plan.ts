// Placeholder until issue 4 lands: replace this file with the real `tsbuild debug plan`.
import { notYet } from './_not-yet.js';

export const command = notYet('debug plan', 'debug plan', 4);
