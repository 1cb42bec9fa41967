// Placeholder until issue 2 lands: replace this file with the real `tsbuild debug parse`.
import { notYet } from './_not-yet.js';

export const command = notYet('debug parse', 'debug parse', 2);
