// Worker thread for the MMIO campaign: one profile's run (bench/fuzz/mmio.ts), so both profiles use both cores.
import { parentPort, workerData } from 'node:worker_threads';
import { runMmioCampaign, type MmioCampaignOptions } from './mmio.js';

parentPort!.postMessage(runMmioCampaign(workerData as MmioCampaignOptions));
