// Worker thread for the config-parser campaign (bench/fuzz/config.ts), so that it runs beside the control campaign
// (whose work is in the daemon's process).
import { parentPort, workerData } from 'node:worker_threads';
import { runConfigCampaign, type ConfigCampaignOptions } from './config.js';

parentPort!.postMessage(runConfigCampaign(workerData as ConfigCampaignOptions));
