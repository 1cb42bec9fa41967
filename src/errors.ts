// The one error class is defined in store/ (the bottom layer); src/ uses it through here.
export { TsbError, isTsbError, errnoCode } from '../store/errors.js';
export type { Span, TsbErrorOptions } from '../store/errors.js';
