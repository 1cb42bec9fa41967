import { openStore } from '../../store/index.js';
import { storeSuite } from './suite.js';

storeSuite((dir) => openStore(dir));
