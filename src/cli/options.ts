/** Options every command accepts (set before the command name). */
import type { KernelChoice } from '../kernels/device.js';

export interface GlobalOptions {
  threads?: number;
  kernels?: KernelChoice;
}
