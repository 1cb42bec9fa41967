// Placeholder until issue 3 lands: replace this file with the real command.
import { notYet } from './_not-yet.js';

export const command = notYet('tag', 'tag', 3);
