// This package's drop-in server, imported the way its users would.
import {serve} from './serve.js';

await serve(() => import('../../index.js'));
