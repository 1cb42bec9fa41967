// Placeholder until issue 6 lands: replace this file with the real command.
import { notYet } from './_not-yet.js';

export const command = notYet('login', 'login', 6);
